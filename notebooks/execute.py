"""Re-execute lesson notebooks in place so that their stored outputs stay true.

    python notebooks/execute.py              # every notebooks/*.ipynb
    python notebooks/execute.py NB.ipynb ... # just these

Run through `./dev.sh execute` after changing the package. Each notebook runs
top to bottom in a fresh `python3` kernel, started in the notebook's folder
(as JupyterLab and nbval do) with PYTHONHASHSEED=0; cells may run for up to
600 s. Notebooks must seed their own random generators: nbval re-runs them
without any help from this script. The kernelspec metadata is set to python3,
execution counts are renumbered from 1, and widget state is stored so that a
saved notebook shows its widgets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from ipykernel.kernelspec import get_kernel_dict
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from traitlets import default

HERE = Path(__file__).resolve().parent
KERNELSPEC = {
    "name": "python3",
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
}
TIMEOUT = 600


class ThisPythonKernelSpecs(KernelSpecManager):
    """Resolve `python3` to an ipykernel of the running interpreter (the
    project's .venv), never to some other `python3` kernelspec a user has
    installed; nbval's --nbval-current-env does the same."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(resource_dir="", **get_kernel_dict())


class ThisPythonKernelManager(KernelManager):
    @default("kernel_spec_manager")
    def _kernel_spec_manager_default(self) -> KernelSpecManager:
        return ThisPythonKernelSpecs(data_dir=self.data_dir)


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        nb,
        kernel_manager_class=ThisPythonKernelManager,
        kernel_name="python3",
        timeout=TIMEOUT,
        record_timing=False,  # no per-cell timestamps: reruns give clean diffs
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    for cell in nb.cells:  # one print can arrive in pieces; join them so a re-run gives a clean diff
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    # nbclient may replace the kernelspec from the running kernel; keep ours.
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nbformat.validate(nb)
    nbformat.write(nb, path)


def merge_streams(outputs: list) -> list:
    """Consecutive stdout (or stderr) outputs of one cell as a single output, as nbval compares them."""
    merged = []
    for out in outputs:
        last = merged[-1] if merged else None
        if out.output_type == "stream" and last is not None and last.output_type == "stream" \
                and last.name == out.name:
            last.text += out.text
        else:
            merged.append(out)
    return merged


def main(argv: list[str]) -> int:
    os.environ["PYTHONHASHSEED"] = "0"  # inherited by the kernel process
    paths = [Path(a).resolve() for a in argv] or sorted(HERE.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks in {HERE}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"executing {os.path.relpath(path)}", flush=True)
        execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
