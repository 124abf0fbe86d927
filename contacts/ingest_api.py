"""The Segment-compatible ingest endpoints: POST /v1/identify, /v1/track, /v1/page,
/v1/screen, /v1/group, /v1/alias and /v1/batch (also /v1/import, the name older Segment
libraries use for batch).

Authentication is the workspace's API key, sent as Segment's write key: HTTP Basic with the
key as the user name, `Authorization: Bearer <key>`, or `writeKey` in the body. Signed-in
sessions are not accepted here. Bodies are capped before they are parsed: 32 KB per call,
500 KB per batch, as Segment's own API.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workspaces.authentication import ApiKeyAuthentication, find_api_key
from workspaces.models import ApiKey, Workspace
from workspaces.services import touch_api_key

from .ingest import (
    MAX_BATCH_BYTES,
    MAX_CALL_BYTES,
    CallError,
    call_size,
    ingest_calls,
    parse_call,
)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes (also after gunzip)."""
    what = "a batch" if limit == MAX_BATCH_BYTES else "a single call"
    message = f"The body is larger than {limit // 1024} KB, the limit for {what}."
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(message)
    body = request._request.body
    if request.META.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise exceptions.ParseError("The body is not valid gzip.") from exc
    if len(body) > limit:
        raise PayloadTooLarge(message)
    return body


def load_json(body: bytes) -> Any:
    if not body.strip():
        raise exceptions.ParseError("The body is empty: send a JSON object.")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise exceptions.ParseError(f"Malformed JSON: {exc}") from exc


class IngestView(APIView):
    """Base of the ingest endpoints: read, authenticate, parse, then call the service."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes: list[Any] = []  # the write key decides, in workspace_for()
    renderer_classes = [JSONRenderer]
    # Declares JSON for the schema; the body itself is read by read_body(), capped.
    parser_classes = [JSONParser]
    throttle_classes: list[Any] = []
    body_limit = MAX_CALL_BYTES

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(response.data, Mapping):
            response.data = {"success": False, **response.data}
        return response

    def read_payload(self, request: Request) -> tuple[Workspace, dict[str, Any]]:
        body = read_body(request, self.body_limit)
        try:
            payload = load_json(body)
        except exceptions.ParseError:
            if request.auth is None:
                raise exceptions.NotAuthenticated() from None
            raise
        workspace = self.workspace_for(request, payload)
        if not isinstance(payload, Mapping):
            raise exceptions.ParseError("The body must be a JSON object.")
        return workspace, dict(payload)

    def workspace_for(self, request: Request, payload: Any) -> Workspace:
        """The key's workspace: from the Authorization header, else Segment's `writeKey`."""
        if isinstance(request.auth, ApiKey):
            return request.auth.workspace
        write_key = payload.get("writeKey") if isinstance(payload, Mapping) else None
        if not isinstance(write_key, str) or not write_key:
            raise exceptions.NotAuthenticated(
                "Send the workspace's API key as the HTTP Basic user name "
                "(Segment's write key), as a Bearer token, or as writeKey in the body."
            )
        api_key = find_api_key(write_key)
        touch_api_key(api_key)
        return api_key.workspace


SUCCESS = inline_serializer("IngestSuccess", {"success": serializers.BooleanField()})
CALL_ERRORS = inline_serializer(
    "IngestCallErrors",
    {
        "success": serializers.BooleanField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)
PLAIN_ERROR = inline_serializer(
    "IngestError", {"success": serializers.BooleanField(), "detail": serializers.CharField()}
)
ERROR_RESPONSES = {400: CALL_ERRORS, 401: PLAIN_ERROR, 413: PLAIN_ERROR}

SEGMENT_EXAMPLES = {
    "identify": {
        "userId": "019mr8mf4r",
        "traits": {
            "email": "pgibbons@example.com",
            "name": "Peter Gibbons",
            "industry": "Technology",
        },
        "context": {"ip": "24.5.68.47"},
        "timestamp": "2012-12-02T00:30:08.276Z",
    },
    "track": {
        "userId": "019mr8mf4r",
        "event": "Item Purchased",
        "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
        "context": {"ip": "24.5.68.47"},
        "timestamp": "2012-12-02T00:30:12.984Z",
    },
    "page": {
        "userId": "019mr8mf4r",
        "name": "Tracking HTTP API",
        "timestamp": "2012-12-02T00:31:29.738Z",
    },
    "screen": {
        "userId": "019mr8mf4r",
        "name": "Tracking HTTP API",
        "timestamp": "2012-12-02T00:31:29.738Z",
    },
    "group": {
        "userId": "019mr8mf4r",
        "groupId": "8e9df332ac",
        "traits": {"name": "Initech", "industry": "Technology", "employees": 420},
        "timestamp": "2012-12-02T00:31:38.208Z",
    },
    "alias": {
        "previousId": "39239-239239-239239-23923",
        "userId": "019mr8mf4r",
        "timestamp": "2012-12-02T00:31:29.738Z",
    },
}
CALL_DESCRIPTIONS = {
    "identify": "Create or update the contact with this userId (or traits.email) and tie the "
    "visitor's earlier anonymous activity to it.",
    "track": "Record an event under the name as sent. properties.revenue (or total) and "
    "properties.currency record an order's value.",
    "page": "Record a page view, stored as the event `page_viewed`.",
    "screen": "Record a screen view in an app, stored as the event `screen_viewed`.",
    "group": "Record that the user belongs to a group, stored as the event `group_joined`.",
    "alias": "Tell Mailpath that previousId (an anonymousId or an earlier userId) is userId.",
}


class CallView(IngestView):
    """One call: 200 {"success": true}, or 400 with the fields that are wrong."""

    call_type = ""

    def post(self, request: Request) -> Response:
        workspace, payload = self.read_payload(request)
        now = timezone.now()
        try:
            call = parse_call(payload, self.call_type, now=now)
        except CallError as exc:
            return Response({"success": False, "errors": exc.errors}, status=400)
        report = ingest_calls(workspace=workspace, calls=[(0, call)], now=now)
        if report.errors:
            return Response({"success": False, "errors": report.errors[0][1]}, status=400)
        return Response({"success": True})

    @classmethod
    def for_call(cls, call_type: str) -> Any:
        schema = extend_schema(
            operation_id=f"ingest_{call_type}",
            summary=f"Segment {call_type}",
            description=CALL_DESCRIPTIONS[call_type],
            tags=["Ingest (Segment-compatible)"],
            request=OpenApiTypes.OBJECT,
            responses={200: SUCCESS, **ERROR_RESPONSES},
            examples=[
                OpenApiExample(
                    f"Segment's {call_type} example",
                    value=SEGMENT_EXAMPLES[call_type],
                    request_only=True,
                )
            ],
        )

        def post(self: CallView, request: Request) -> Response:
            return CallView.post(self, request)

        attributes = {"call_type": call_type, "post": schema(post)}
        return type(f"{call_type.title()}View", (cls,), attributes).as_view()


BATCH_RESULT = inline_serializer(
    "IngestBatchResult",
    {
        "success": serializers.BooleanField(help_text="false when any call was refused"),
        "accepted": serializers.IntegerField(help_text="calls written (duplicates included)"),
        "duplicates": serializers.IntegerField(help_text="calls whose messageId was seen before"),
        "results": inline_serializer(
            "IngestBatchItemError",
            {
                "index": serializers.IntegerField(),
                "errors": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField())
                ),
            },
            many=True,
            required=False,
        ),
    },
)


class BatchView(IngestView):
    """Many calls at once. Valid calls are written even when others are refused; the answer
    lists each refused call by its index in `batch`."""

    body_limit = MAX_BATCH_BYTES

    @extend_schema(
        operation_id="ingest_batch",
        summary="Segment batch",
        description="Up to 500 KB of identify, track, page, screen, group and alias calls, each "
        "with its `type` and at most 32 KB. `context` and `integrations` at the top level "
        "apply to every call. Always 200 once the body is read: refused calls are listed in "
        "`results` with their index.",
        tags=["Ingest (Segment-compatible)"],
        request=OpenApiTypes.OBJECT,
        responses={200: BATCH_RESULT, 400: PLAIN_ERROR, 401: PLAIN_ERROR, 413: PLAIN_ERROR},
        examples=[
            OpenApiExample(
                "Segment's batch example",
                request_only=True,
                value={
                    "batch": [
                        {"type": "identify", **SEGMENT_EXAMPLES["identify"]},
                        {"type": "track", **SEGMENT_EXAMPLES["track"]},
                    ],
                    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        workspace, payload = self.read_payload(request)
        items = payload.get("batch")
        if not isinstance(items, list):
            raise exceptions.ParseError("A batch carries its calls as a list under “batch”.")
        context = payload.get("context")
        if context is not None and not isinstance(context, Mapping):
            raise exceptions.ParseError("context must be an object.")
        now = timezone.now()
        calls, errors = [], []
        may_be_oversized = len(request._request.body) > MAX_CALL_BYTES
        for index, item in enumerate(items):
            try:
                if may_be_oversized and call_size(item) > MAX_CALL_BYTES:
                    limit = MAX_CALL_BYTES // 1024
                    raise CallError({"call": [f"This call is larger than {limit} KB, the limit."]})
                calls.append(
                    (index, parse_call(item, _call_type(item), now=now, batch_context=context))
                )
            except CallError as exc:
                errors.append((index, exc.errors))
        report = ingest_calls(workspace=workspace, calls=calls, now=now)
        errors = sorted([*errors, *report.errors], key=lambda pair: pair[0])
        body: dict[str, Any] = {
            "success": not errors,
            "accepted": report.accepted,
            "duplicates": report.duplicates,
        }
        if errors:
            body["results"] = [{"index": index, "errors": found} for index, found in errors]
        return Response(body)


class ImportView(BatchView):
    """/v1/import: where analytics-ruby and analytics-java post their batches."""

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        return super().post(request)


def _call_type(item: Any) -> str:
    if not isinstance(item, Mapping):
        raise CallError({"call": ["A call is a JSON object."]})
    call_type = item.get("type")
    if not isinstance(call_type, str) or not call_type:
        raise CallError({"type": ["Each call in a batch names its type: identify, track, page, …"]})
    return call_type
