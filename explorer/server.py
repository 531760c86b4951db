"""A Jupyter server setting that keeps the slider quick: kernel messages leave at once.

Jupyter's server relays each kernel message to the browser over a websocket, and
leaves Nagle's algorithm on for that socket. A slider move makes the kernel send a
few small messages in a row (busy, the echo of the new value, the picture, idle);
with Nagle on, each small message waits until the browser has acknowledged the one
before, and browsers delay acknowledgements by up to 40 ms. Measured here in
JupyterLab in Chromium: a trivial slider-to-picture round trip took about 10 ms or
about 45 ms after the kernel's handler, at random; with TCP_NODELAY, 5 to 20 ms.

``jupyter_config/`` names this class for JupyterLab (``ServerApp``) and Voila, so
``make lab``, ``make app``, Binder and the browser tests all use it. It changes
nothing but that socket option.
"""

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayConnection(ZMQChannelsWebsocketConnection):
    """The server's usual kernel connection, with TCP_NODELAY on the browser's websocket."""

    async def connect(self):
        self.websocket_handler.set_nodelay(True)  # send each message as soon as it is written
        return await super().connect()
