"""The gallery: starter templates for each stage of the customer journey.

Every starter is a blocks template, so it is dressed in the workspace's brand kit (logo,
colours, fonts, footer) the moment it is created, and personalised with Liquid: the
contact's first name with a fallback, the workspace's name, and the properties of the
event that triggered the email (Segment's e-commerce fields: order_id, total, currency,
products), each with a fallback so the email reads well without them.

    starter = get_starter("abandoned_cart")
    template = create_from_starter(workspace, "abandoned_cart", user=request.user)

Links point at https://example.com/... placeholders the user replaces with their own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from workspaces.models import Workspace

from .models import EmailTemplate, TemplatePurpose
from .rendering.compile import TemplateContent
from .services import create_template, free_template_name

MARKETING = TemplatePurpose.MARKETING.value
TRANSACTIONAL = TemplatePurpose.TRANSACTIONAL.value
STAGES = ("awareness", "consideration", "decision", "retention", "advocacy")
FIRST_NAME = '{{ contact.first_name | default: "there" }}'
ORDER_ID = "{{ event.properties.order_id }}"
ORDER_NUMBER = "{% if event.properties.order_id %} #" + ORDER_ID + "{% endif %}"
ORDER_TOTAL = "{{ event.properties.total | money: event.properties.currency }}"
SIGN_OFF = "<p>Warmly,<br>The {{ workspace.name }} team</p>"


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    stage: str
    description: str
    purpose: str
    subject: str
    preheader: str
    blocks: list

    def content(self) -> TemplateContent:
        return TemplateContent(
            kind="blocks",
            subject=self.subject,
            preheader=self.preheader,
            blocks=copy.deepcopy(self.blocks),
        )


def heading(text: str, level: int = 1, align: str = "left") -> dict:
    return {"type": "heading", "text": text, "level": level, "align": align}


def text(html: str, align: str = "left") -> dict:
    return {"type": "text", "html": html, "align": align}


def button(label: str, url: str, align: str = "left") -> dict:
    return {"type": "button", "label": label, "url": url, "align": align}


def products(title: str, button_label: str = "") -> dict:
    block = {"type": "product_list", "items": "event.properties.products", "title": title}
    if button_label:
        block["button_label"] = button_label
    block["currency"] = "USD"
    return block


DIVIDER = {"type": "divider"}
SOCIAL = {"type": "social"}
FOOTER = {"type": "footer"}


STARTERS: list[Starter] = [
    Starter(
        key="welcome",
        name="Welcome",
        stage="awareness",
        description="Says hello to a new subscriber, sets expectations and offers a first-order "
        "discount. Send it right after signup.",
        purpose=MARKETING,
        subject="Welcome to {{ workspace.name }}",
        preheader="Here's what to expect from us, and a little something to get you started.",
        blocks=[
            heading(f"Hi {FIRST_NAME}, welcome aboard!"),
            text(
                "<p>Thanks for joining {{ workspace.name }}. We're a small team and we're "
                "really glad you're here.</p>"
                "<p>Here's what you can expect from us:</p>"
                "<ul><li><strong>Useful ideas</strong> and how-tos, about twice a month</li>"
                "<li><strong>First dibs</strong> on new arrivals and restocks</li>"
                "<li><strong>Subscriber-only offers</strong> now and then, never a flood</li>"
                "</ul>"
                "<p>To say hello, here's <strong>10% off your first order</strong> with the "
                "code <strong>WELCOME10</strong>.</p>"
            ),
            button("Start shopping", "https://example.com/shop"),
            text(
                "<p>Questions? Just reply to this email: a real person reads every one.</p>"
                + SIGN_OFF
            ),
            SOCIAL,
            FOOTER,
        ],
    ),
    Starter(
        key="content_digest",
        name="Content digest",
        stage="consideration",
        description="A short digest of your best articles and guides, to help people who are "
        "still comparing. Send every week or two.",
        purpose=MARKETING,
        subject="Three good reads from {{ workspace.name }}",
        preheader="Guides, stories and answers we picked for you. Five minutes with a coffee.",
        blocks=[
            heading("Three things worth your time"),
            text(
                f"<p>Hi {FIRST_NAME}, here's what we've been writing, testing and talking "
                "about lately. Pick one, or save them all for the weekend.</p>"
            ),
            heading("How to choose the right one for you", level=2),
            text(
                "<p>Our buying guide in plain words: what matters, what doesn't, and where "
                "you can save money.</p>"
                '<p><a href="https://example.com/blog/buying-guide">Read the guide</a></p>'
            ),
            DIVIDER,
            heading("Behind the scenes: how we choose what we sell", level=2),
            text(
                "<p>We test everything before it reaches the shop. Here's what we look for, "
                "and what didn't make the cut.</p>"
                '<p><a href="https://example.com/blog/behind-the-scenes">Read the story</a></p>'
            ),
            DIVIDER,
            heading("Your questions, answered", level=2),
            text(
                "<p>The five questions customers ask us most, with honest answers.</p>"
                '<p><a href="https://example.com/blog/faq">See the answers</a></p>'
            ),
            button("Visit the blog", "https://example.com/blog"),
            text(
                "<p>Want us to cover something? Hit reply and tell us: the best questions "
                "become next month's articles.</p>"
            ),
            FOOTER,
        ],
    ),
    Starter(
        key="abandoned_cart",
        name="Abandoned cart",
        stage="decision",
        description="Reminds someone of the items left in their cart, with a button back to "
        "it. Triggered by a cart event whose properties list the products.",
        purpose=MARKETING,
        subject="You left something in your cart",
        preheader="We've saved your items, so you can pick up right where you left off.",
        blocks=[
            heading("Still thinking it over?"),
            text(
                f"<p>Hi {FIRST_NAME}, you left a few things in your cart at "
                "{{ workspace.name }}. No rush: "
                "we've saved them for you, so you can pick up right where you left off.</p>"
            ),
            products("Your cart", button_label="View item"),
            text(
                "{% if event.properties.total %}<p><strong>Cart total: "
                f"{ORDER_TOTAL}</strong></p>{{% endif %}}",
                align="right",
            ),
            button(
                "Return to your cart",
                '{{ event.properties.cart_url | default: "https://example.com/cart" }}',
                align="center",
            ),
            text(
                "<p>Have a question about sizing, delivery or returns? Reply to this email "
                "and we'll help you decide.</p>"
            ),
            FOOTER,
        ],
    ),
    Starter(
        key="order_confirmation",
        name="Order confirmation",
        stage="decision",
        description="Confirms an order with its number, items and total. Transactional: "
        "send it when the order event arrives.",
        purpose=TRANSACTIONAL,
        subject="Thanks for your order" + ORDER_NUMBER,
        preheader="We've received your order and we're getting it ready. Here are the details.",
        blocks=[
            heading("Thank you for your order!"),
            text(
                f"<p>Hi {FIRST_NAME}, we've received your order and we're getting it ready. "
                "We'll email you again as soon as it's on its way.</p>"
                f"<p><strong>Order number:</strong> #{ORDER_ID}<br>"
                '<strong>Order date:</strong> {{ event.occurred_at | date: "%B %-d, %Y" | '
                'default: "today" }}</p>'
            ),
            products("Your order"),
            text(
                f"{{% if event.properties.total %}}<p><strong>Total: {ORDER_TOTAL}</strong></p>"
                "{% endif %}",
                align="right",
            ),
            button(
                "View your order",
                '{{ event.properties.order_url | default: "https://example.com/account/orders" }}',
            ),
            text(
                "<p>Need to change something? Reply to this email as soon as you can and "
                "we'll do our best to catch it before it ships.</p>" + SIGN_OFF
            ),
            FOOTER,
        ],
    ),
    Starter(
        key="thank_you",
        name="Thank you",
        stage="decision",
        description="A warm, personal thank-you a day or two after a first purchase. No "
        "selling, just gratitude and a way to reach you.",
        purpose=MARKETING,
        subject="A quick thank you from {{ workspace.name }}",
        preheader="Your order means a lot to a small team like ours.",
        blocks=[
            heading("From all of us: thank you"),
            text(
                f"<p>Hi {FIRST_NAME},</p>"
                "<p>We wanted to say a proper thank you for your order. {{ workspace.name }} "
                "is a small business, and every order, yours included, is what keeps us "
                "going.</p>"
                "<p>If anything isn't quite right, just reply to this email and we'll sort it "
                "out. And if you love it, we'd love to see it: tag us when you share it.</p>"
                + SIGN_OFF
            ),
            SOCIAL,
            FOOTER,
        ],
    ),
    Starter(
        key="shipping_notice",
        name="Shipping notice",
        stage="decision",
        description="Tells the customer their order has shipped, with the tracking link and "
        "expected delivery date. Transactional.",
        purpose=TRANSACTIONAL,
        subject="Your order" + ORDER_NUMBER + " is on its way",
        preheader="Track your parcel and see when it should arrive.",
        blocks=[
            heading("Good news: it's on its way!"),
            text(
                f"<p>Hi {FIRST_NAME}, your order has left us and is heading your way.</p>"
                f"<p><strong>Order number:</strong> #{ORDER_ID}<br>"
                "<strong>Carrier:</strong> "
                '{{ event.properties.carrier | default: "our delivery partner" }}<br>'
                "<strong>Expected delivery:</strong> "
                '{{ event.properties.estimated_delivery | date: "%A, %B %-d" | '
                'default: "within 3 to 5 working days" }}</p>'
            ),
            button(
                "Track your parcel",
                '{{ event.properties.tracking_url | default: "https://example.com/track" }}',
            ),
            products("In this parcel"),
            text(
                "<p>Not home when it arrives? The carrier will leave a note on how to "
                "rearrange delivery. Any other questions, just reply to this email.</p>" + SIGN_OFF
            ),
            FOOTER,
        ],
    ),
    Starter(
        key="product_tips",
        name="Product tips",
        stage="retention",
        description="Three tips to get the most out of a purchase, a week or two after it "
        "arrived. Happy customers come back.",
        purpose=MARKETING,
        subject="3 tips to get the most out of your order",
        preheader="Small things that make a big difference, from people who use it every day.",
        blocks=[
            heading("Make it last, make it yours"),
            text(
                f"<p>Hi {FIRST_NAME}, now that your order has had time to settle in, here are "
                "three things our team wishes everyone knew.</p>"
            ),
            {
                "type": "columns",
                "columns": [
                    [
                        heading("1. Start right", level=3),
                        text(
                            "<p>Take two minutes with the care card in the box. It's short, "
                            "and it's the difference between good and great.</p>"
                        ),
                    ],
                    [
                        heading("2. Look after it", level=3),
                        text(
                            "<p>A little care goes a long way. Our guide covers cleaning, "
                            "storing and small fixes.</p>"
                        ),
                    ],
                    [
                        heading("3. Ask us anything", level=3),
                        text(
                            "<p>Stuck or curious? Reply to this email: people who use our "
                            "products every day will answer.</p>"
                        ),
                    ],
                ],
            },
            button("Read the care guide", "https://example.com/guides/care", align="center"),
            FOOTER,
        ],
    ),
    Starter(
        key="win_back",
        name="Win-back offer",
        stage="retention",
        description="Invites a customer who has drifted away to come back, with a time-limited "
        "discount and an easy way out.",
        purpose=MARKETING,
        subject='We miss you, {{ contact.first_name | default: "friend" }}',
        preheader="A little welcome-back gift, good for the next 14 days.",
        blocks=[
            heading('We miss you, {{ contact.first_name | default: "friend" }}', align="center"),
            text(
                "<p>It's been a while since we last saw you at {{ workspace.name }}, so we "
                "wanted to check in. There's a lot that's new: fresh arrivals, old favourites "
                "back in stock, and a few things we think you'll love.</p>"
                "<p>To welcome you back, here's <strong>15% off</strong> your next order, "
                "good for the next 14 days:</p>",
                align="center",
            ),
            heading("COMEBACK15", level=2, align="center"),
            button("See what's new", "https://example.com/new", align="center"),
            text(
                "<p>Not for you any more? No hard feelings: you can "
                '<a href="{{ unsubscribe_url }}">unsubscribe here</a>.</p>',
                align="center",
            ),
            FOOTER,
        ],
    ),
    Starter(
        key="birthday",
        name="Birthday",
        stage="retention",
        description="Birthday wishes with a gift for the whole birthday month. Send it to "
        "contacts whose birthday is today.",
        purpose=MARKETING,
        subject='Happy birthday, {{ contact.first_name | default: "friend" }}! A gift inside',
        preheader="A little something from all of us, to make your day.",
        blocks=[
            heading(
                'Happy birthday, {{ contact.first_name | default: "friend" }}!', align="center"
            ),
            text(
                "<p>From all of us at {{ workspace.name }}: we hope your day is full of good "
                "things. Here's a small present to add to the pile: <strong>20% off</strong> "
                "anything you like, any time in "
                '{{ contact.birthday | date: "%B" | default: "your birthday month" }}.</p>',
                align="center",
            ),
            heading("BIRTHDAY20", level=2, align="center"),
            button("Treat yourself", "https://example.com/shop", align="center"),
            text("<p>Have a wonderful day.</p>" + SIGN_OFF, align="center"),
            FOOTER,
        ],
    ),
    Starter(
        key="reconfirm",
        name="Re-confirmation",
        stage="retention",
        description="Asks subscribers who have not opened in months whether to keep writing. "
        "A click keeps them; the rest can be removed, which keeps your list healthy.",
        purpose=MARKETING,
        subject="Do you still want to hear from us?",
        preheader="One click keeps you on the list. Otherwise, no hard feelings.",
        blocks=[
            heading("Still want to hear from us?"),
            text(
                f"<p>Hi {FIRST_NAME},</p>"
                "<p>We noticed you haven't opened our emails in a while. That's fine, inboxes "
                "get busy! But we only want to write to people who enjoy hearing from us, so "
                "we're checking in.</p>"
                "<p>If you'd like to keep getting our news and offers, click below. You can "
                "also choose which emails you get.</p>"
            ),
            button("Yes, keep me subscribed", "{{ preferences_url }}", align="center"),
            text(
                '<p>Had enough? You can <a href="{{ unsubscribe_url }}">unsubscribe with one '
                "click</a>. If we don't hear from you, we'll take you off our list in 30 days "
                "so we don't clutter your inbox.</p>" + SIGN_OFF
            ),
            FOOTER,
        ],
    ),
    Starter(
        key="review_request",
        name="Review request",
        stage="advocacy",
        description="Asks for an honest review a week or two after delivery, and offers help "
        "first if something went wrong.",
        purpose=MARKETING,
        subject="How are you getting on with your order?",
        preheader="Two minutes, and your honest review helps other shoppers choose well.",
        blocks=[
            heading("How did we do?"),
            text(
                f"<p>Hi {FIRST_NAME}, you've had your order for a little while now, and we'd "
                "love to know what you think.</p>"
                "<p>Your honest review helps other customers choose well, and tells us what "
                "to keep doing (and what to fix). It takes about two minutes.</p>"
            ),
            button(
                "Write a review",
                '{{ event.properties.review_url | default: "https://example.com/reviews" }}',
                align="center",
            ),
            text(
                "<p>Something not right? Please reply to this email first. We'd much rather "
                "put it right for you.</p>" + SIGN_OFF
            ),
            FOOTER,
        ],
    ),
    Starter(
        key="referral",
        name="Referral invitation",
        stage="advocacy",
        description="Invites happy customers to share your shop: a discount for their friend, "
        "a reward for them.",
        purpose=MARKETING,
        subject="Give 15%, get 15%: share {{ workspace.name }} with a friend",
        preheader="Your friends get a welcome discount, and you get a thank-you for each order.",
        blocks=[
            heading("Share the love, get a reward"),
            text(
                f"<p>Hi {FIRST_NAME}, most of our new customers find us through a friend. If "
                "you've enjoyed {{ workspace.name }}, we'd be grateful if you passed us on, "
                "and we'll say thank you properly.</p>"
            ),
            {
                "type": "columns",
                "columns": [
                    [
                        heading("Your friend gets 15% off", level=3, align="center"),
                        text("<p>On their first order, on anything in the shop.</p>", "center"),
                    ],
                    [
                        heading("You get 15% off", level=3, align="center"),
                        text("<p>For every friend who orders. There's no limit.</p>", "center"),
                    ],
                ],
            },
            button(
                "Get your referral link",
                '{{ contact.referral_url | default: "https://example.com/refer" }}',
                align="center",
            ),
            text(
                "<p>Your reward arrives by email as soon as your friend's order ships.</p>",
                align="center",
            ),
            SOCIAL,
            FOOTER,
        ],
    ),
]

_BY_KEY = {starter.key: starter for starter in STARTERS}


def get_starter(key: str) -> Starter:
    """The starter called `key`; KeyError if there is none."""
    return _BY_KEY[key]


def create_from_starter(
    workspace: Workspace,
    key: str,
    *,
    name: str | None = None,
    user=None,  # type: ignore[no-untyped-def]
) -> EmailTemplate:
    """A new template (revision 1) from a starter. Without a name it is named after the
    starter, numbered if taken ("Welcome 2"); a name given that is taken is a ValidationError.
    """
    starter = get_starter(key)
    content = starter.content()
    return create_template(
        workspace,
        name=name if name is not None else free_template_name(workspace, starter.name),
        purpose=starter.purpose,
        starter=starter.key,
        user=user,
        kind=content.kind,
        subject=content.subject,
        preheader=content.preheader,
        blocks=content.blocks,
    )
