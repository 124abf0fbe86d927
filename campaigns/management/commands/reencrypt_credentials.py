"""Re-encrypt every workspace's ESP credentials with the first MAILPATH_ENCRYPTION_KEY."""

from django.core.management.base import BaseCommand

from campaigns.sending.esp import reencrypt_credentials


class Command(BaseCommand):
    help = (
        "Re-encrypt stored ESP credentials with the first MAILPATH_ENCRYPTION_KEY. Run it "
        "after putting a new key first; then the old key can be removed."
    )

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        done, unreadable = reencrypt_credentials()
        self.stdout.write(f"Re-encrypted {done} connection(s).")
        if unreadable:
            self.stderr.write(
                f"{unreadable} connection(s) could not be read with any configured key; "
                "they were left as they are and will show the error at their next send."
            )
