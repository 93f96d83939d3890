"""docs/notebooks/quickstart.ipynb runs end to end (nbclient on an ipykernel) at toy size, so it cannot rot: the
tiny IDX dataset, a few training steps and 64-sample FIDs, switched by the environment variables its parameter
cell reads. The assertions read the executed outputs: pictures, the FID line, the tables."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "notebooks" / "quickstart.ipynb"


def _outputs(nb, tag: str) -> list:
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected"
    return cells[0].outputs


def _data(outputs, mime: str) -> list[str]:
    return [o["data"][mime] for o in outputs if o.get("output_type") == "execute_result" and mime in o["data"]]


def _stdout(outputs) -> str:
    return "".join(o["text"] for o in outputs if o.get("output_type") == "stream" and o["name"] == "stdout")


def test_quickstart_notebook_runs_at_toy_size(tmp_path, tiny_fmnist, classifier_cache_28, isolated_dirs,
                                              monkeypatch):
    shutil.copytree(classifier_cache_28, isolated_dirs, dirs_exist_ok=True)  # the FID classifier of the toy data
    monkeypatch.setenv("GENLAB_NB_STEPS", "4")
    monkeypatch.setenv("GENLAB_NB_EVAL_SAMPLES", "64")
    monkeypatch.setenv("GENLAB_NB_OVERRIDES", f"data.root={tiny_fmnist} data.verify=false data.limit=128 "
                       "train.batch_size=16 model.hidden_dim=8 model.latent_dim=16 train.threads=1 "
                       "log.tensorboard=false")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed without outputs
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    train = _outputs(nb, "train")
    assert "<b>genlab run</b> notebook-demo" in _data(train, "text/html")[0]
    assert "data:image/png;base64," in _data(train, "text/html")[0]  # its latest grid, inline
    for tag in ("grid", "curves", "interpolation", "export"):
        assert _data(_outputs(nb, tag), "image/png"), f"no picture from the {tag!r} cell"
    fid = _outputs(nb, "fid")
    line = re.search(r"FID (\d+\.\d+) \(95% interval (\d+\.\d+) - (\d+\.\d+)\)", _stdout(fid))
    assert line is not None, _stdout(fid)
    low, value, high = float(line[2]), float(line[1]), float(line[3])
    assert low <= value <= high
    table = _data(fid, "text/html")[0]
    assert "<td>FID</td>" in table and "64 generated vs" in table
    compare = _data(_outputs(nb, "compare"), "text/html")[0]
    assert "notebook-demo" in compare and "notebook-demo-no-ema" in compare and "train.ema" in compare
    assert "model.safetensors" in _stdout(_outputs(nb, "export"))
    # the runs are where the notebook said, in its working folder
    assert (tmp_path / "runs" / "notebook-demo" / "eval.json").is_file()
