"""kserve's ModelServer bound to one address: the predictor and the feature transformer both use it."""

from __future__ import annotations

from kserve import ModelServer


class BoundModelServer(ModelServer):
    """kserve's ModelServer with the REST server on ``host`` (kserve 0.21 always binds 0.0.0.0)."""

    def __init__(self, host: str, **kwargs):
        super().__init__(**kwargs)
        self.host = host

    async def _serve(self):
        # start() has built the REST server but not yet bound it: uvicorn binds config.host.
        rest = self._rest_server or getattr(self._rest_multiprocess_server, "_rest_server", None)
        rest.config.host = self.host
        await super()._serve()
