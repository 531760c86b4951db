"""A Jupyter server setting that keeps a Binder session inside its memory (issue 20).

mybinder.org gives a session 2 GB, for the server and every kernel together, and students
open the notebooks one after another without closing a tab. Each kernel holds about 200 MB
once torch is imported, more after its Run All, so by the sixth notebook the out-of-memory
killer would end a kernel at random, with no word to the student.

``MemoryBudgetKernelManager`` is the server's usual kernel manager, plus a watch: every
``check_s`` seconds it sums the memory of the server and its kernels (PSS, see
``tree_memory``), and when that passes ``budget_mb`` it restarts idle kernels, the least
recently used first, until the sum is back under ``target_mb``. It never touches the kernel
used last, one that is running a cell, or one active in the last ``recent_s`` seconds (a Run
All in progress). A restarted kernel keeps its id, so its
notebook stays connected; it loses its variables, and the next time the student runs a cell
there, the cell's output opens with ``NOTICE`` (restarted to free memory, Run All to get
the state back, close tabs you no longer need).

``jupyter_config/jupyter_server_config.json`` names this class, so ``make lab`` and Binder
(``postBuild`` copies that file) use it. Voila (``make app``) has one kernel per page and
keeps its own manager.
"""

from __future__ import annotations

import asyncio

import psutil
from jupyter_server._tz import utcnow
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float

#: What a kernel restarted to free memory prints, once, at the top of the next cell run in it.
NOTICE = (
    "This notebook's kernel was restarted to free memory for the other notebooks open "
    "(Binder gives the whole session 2 GB).\n"
    "Its variables are gone: use Run > Run All Cells to get them back.\n"
    "Close the tabs of notebooks you have finished with (File > Close Tab): their kernels shut down."
)

#: Run silently in a restarted kernel: print NOTICE on the next cell run, then never again.
_HOOK = f"""
def _memory_notice_once(ip):
    import sys
    def notice(info):
        ip.events.unregister("pre_run_cell", notice)
        print({NOTICE!r}, file=sys.stderr, flush=True)
    if notice.__name__ not in {{f.__name__ for f in ip.events.callbacks["pre_run_cell"]}}:
        ip.events.register("pre_run_cell", notice)
_memory_notice_once(get_ipython())
del _memory_notice_once
"""

MB = 2**20


def _pss_rss(process: psutil.Process) -> tuple[float, float]:
    try:
        info = process.memory_full_info()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0.0, 0.0
    return info.pss / MB, info.rss / MB


def tree_memory(pid: int) -> tuple[float, float]:
    """Memory of process `pid` and all its descendants, in MB: (sum of PSS, sum of RSS).

    The PSS sum is what a cgroup such as Binder's charges, near enough: a page shared by
    several processes (torch's library code, mapped by every kernel) counts once in it,
    split between them, whereas the RSS sum counts it once per process.

    >>> pss, rss = tree_memory(psutil.Process().pid)
    >>> 0 < pss <= rss
    True
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    sums = [_pss_rss(p) for p in processes]
    return sum(s[0] for s in sums), sum(s[1] for s in sums)


class MemoryBudgetKernelManager(AsyncMappingKernelManager):
    """The usual kernel manager; past ``budget_mb`` it restarts the least recently used idle kernels."""

    budget_mb = Float(1500.0, config=True,
                      help="Server plus kernels (sum of PSS, MB) above which idle kernels are restarted.")
    target_mb = Float(1100.0, config=True, help="Restart idle kernels until the sum is under this (MB).")
    check_s = Float(2.0, config=True, help="Seconds between memory checks.")
    #: A kernel under this many MB (PSS) is not worth restarting (a fresh ipykernel is about 40).
    least_mb = Float(120.0, config=True, help="Kernels smaller than this (PSS, MB) are left alone.")
    #: A Run All in progress is idle for a moment between its cells: such a kernel is in use.
    recent_s = Float(30.0, config=True, help="Kernels active in the last this many seconds are left alone.")

    _watch = None

    async def _async_start_kernel(self, *args, **kwargs):
        kernel_id = await super()._async_start_kernel(*args, **kwargs)
        if self._watch is None or self._watch.done():
            self._watch = asyncio.ensure_future(self._watch_memory())
        return kernel_id

    start_kernel = _async_start_kernel

    async def _watch_memory(self):
        self.log.info("memory: restarting idle kernels past %.0f MB (explorer.memory)", self.budget_mb)
        while self._kernels:
            await asyncio.sleep(self.check_s)
            try:
                await self.free_memory()
            except Exception:  # never let the watch die: log and go on
                self.log.exception("memory watch")

    def _kernel_pss(self, kernel_id: str) -> float:
        kernel = self._kernels.get(kernel_id)
        pid = getattr(getattr(kernel, "provisioner", None), "pid", None)
        return tree_memory(pid)[0] if pid else 0.0

    async def free_memory(self) -> list[str]:
        """Restart idle kernels, least recently used first, while over budget; returns their ids."""
        total = (await asyncio.to_thread(tree_memory, psutil.Process().pid))[0]
        if total <= self.budget_mb:
            return []
        kernels = sorted(self._kernels.items(), key=lambda item: item[1].last_activity)
        freed = []
        for kernel_id, kernel in kernels[:-1]:  # never the one used last
            if total <= self.target_mb:
                break
            size = await asyncio.to_thread(self._kernel_pss, kernel_id)
            recently = (utcnow() - kernel.last_activity).total_seconds() < self.recent_s
            if getattr(kernel, "execution_state", "") != "idle" or size < self.least_mb or recently:
                continue
            self.log.warning("memory: %.0f MB over the %.0f MB budget; restarting idle kernel %s (%.0f MB)",
                             total, self.budget_mb, kernel_id, size)
            used = kernel.last_activity
            await self.restart_kernel(kernel_id)
            self._send_notice_hook(kernel_id)
            await asyncio.sleep(1)  # the hook runs (a few ms); then the restart counts as no use
            kernel.last_activity = used
            self.log.info("memory: kernel %s restarted; its next cell prints the notice", kernel_id)
            freed.append(kernel_id)
            total = (await asyncio.to_thread(tree_memory, psutil.Process().pid))[0]
        return freed

    def _send_notice_hook(self, kernel_id: str):
        kernel = self.get_kernel(kernel_id)
        stream = kernel.connect_shell()
        kernel.session.send(stream, "execute_request", {
            "code": _HOOK, "silent": True, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": False})
        asyncio.get_event_loop().call_later(5, stream.close)
