"""The data plane: EDR tokens, sources and sinks, streaming with digests, usage enforcement on every request.

    from connector.dataplane import DataPlane, TransferInfo, AssetInfo, create_app
    dataplane = DataPlane.from_context(ctx)          # E: ctx.dataplane = dataplane
    address = await dataplane.start(transfer_info)   # PULL: DSP dataAddress (EDR); PUSH: None, streams
    dataplane.suspend(tid, reason) / terminate(tid, reason) / complete(tid)
    dataplane.store_edr(tid, data_address, ...); await dataplane.pull(tid, FileSink("name"))
"""

from connector.dataplane.app import create_app, create_data_app
from connector.dataplane.errors import DataPlaneError
from connector.dataplane.service import DataPlane, Grant
from connector.dataplane.sinks import FileSink, HttpSink, Sink
from connector.dataplane.types import (
    HTTP_ENDPOINT_TYPE,
    AssetInfo,
    FailHook,
    RevocationCheck,
    TransferInfo,
    TransferResult,
    TransferStates,
)

__all__ = [
    "HTTP_ENDPOINT_TYPE", "AssetInfo", "DataPlane", "DataPlaneError", "FailHook", "FileSink", "Grant", "HttpSink",
    "RevocationCheck", "Sink", "TransferInfo", "TransferResult", "TransferStates", "create_app", "create_data_app",
]
