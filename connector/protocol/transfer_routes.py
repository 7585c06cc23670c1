"""DSP transfer process binding: provider paths and the consumer's callback paths (our root).

Both sides share ``/transfers/{pid}/start|completion|suspension|termination`` and ``GET /transfers/{pid}``;
the process found by its pid says which side handles the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from connector import transfer as tp
from connector.logs import CORRELATION_HEADER
from connector.protocol.direct import DspRoute, Endpoint
from connector.protocol.edge import DSP_ERRORS, authenticate
from connector.protocol.inbound import ProcessBinding
from connector.storage.tables_protocol import TransferRow
from connector.threads import in_thread

if TYPE_CHECKING:
    from connector.context import ConnectorContext

# a TransferRequestMessage names no process of ours yet: repeats of one consumerPid queue on it
BINDING = ProcessBinding(error_type="TransferError", row_type=TransferRow, advance=tp.advance,
                         lock_field="consumerPid")
EVENTS = {"start": ("TransferStartMessage", "start"), "completion": ("TransferCompletionMessage", "complete"),
          "suspension": ("TransferSuspensionMessage", "suspend"),
          "termination": ("TransferTerminationMessage", "terminate")}
TAG = "dsp-transfer"


def transfer_routes(ctx: ConnectorContext) -> list[DspRoute]:
    async def transfer_request(request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await BINDING.receive(request, ctx, ("TransferRequestMessage",), None,
                                     lambda s, p, m: tp.provider_receive_request(ctx, s, p, m, cid))

    def bind(message_type: str, event: str) -> Endpoint:
        # either side handles these the same way; our role only names the pid in an error body
        async def receive(pid: str, request: Request) -> Response:
            return await BINDING.receive(request, ctx, (message_type,), pid,
                                         lambda s, p, m: tp.receive_message(ctx, s, p, m, pid, event), None)
        return receive

    async def get_transfer(pid: str, request: Request) -> Response:
        try:
            party = await authenticate(request, ctx)

            def read() -> dict[str, Any]:
                with ctx.sessions() as session:
                    return tp.process_body(tp.load(session, pid, party=party, for_update=False))
            body = await in_thread(read)
        except DSP_ERRORS as exc:
            return await BINDING.process_error(ctx, pid, exc)
        return JSONResponse(body)

    return [DspRoute("POST", "/transfers/request", transfer_request, "transfer_request", TAG),
            *(DspRoute("POST", f"/transfers/{{pid}}/{path}", bind(message_type, event), f"transfer_{path}", TAG)
              for path, (message_type, event) in EVENTS.items()),
            DspRoute("GET", "/transfers/{pid}", get_transfer, "get_transfer", TAG)]
