"""The HTML report: every section present, every embedded image decodes, nothing external; loads cleanly in
headless Chromium at phone and laptop widths."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from genlab.reporting.html import RUN_SECTIONS, build_report

CHROMIUM = Path("/usr/bin/chromium")


class Page(HTMLParser):
    """Collects sections, images, links, scripts and external references of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self.external: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(a.get("id", ""))
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            v = a.get(key)
            if v and not v.startswith(("data:", "#")):
                self.external.append(v)


def decode_all(page: Page) -> list[tuple[str, tuple[int, int]]]:
    out = []
    for src in page.images:
        m = re.fullmatch(r"data:(image/(?:png|gif));base64,([A-Za-z0-9+/=]+)", src)
        assert m, f"image is not an embedded PNG/GIF: {src[:60]}"
        with Image.open(io.BytesIO(base64.b64decode(m.group(2)))) as im:
            im.load()
            assert im.format == m.group(1).split("/")[1].upper()
            out.append((im.format, im.size))
    return out


def check_self_contained(text: str) -> Page:
    page = Page(text)
    assert page.external == [], page.external
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "could not be drawn" not in text
    return page


@pytest.fixture(scope="module")
def gan_report(gan_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    return build_report([gan_run], out, log=lambda *_: None)


def test_run_report_has_every_section(gan_report):
    text = gan_report.read_text()
    page = check_self_contained(text)
    assert page.sections == [f"run0-{s}" for s in RUN_SECTIONS]
    assert "not evaluated" in text  # the run has no eval.json
    images = decode_all(page)
    # losses, progress, 64 samples, interpolation PNG + GIF, traversal, pixel neighbours; no scatter (GAN), no
    # coverage figure
    assert [f for f, _ in images].count("GIF") == 1 and len(images) == 7
    assert "nearest of 128 training images by pixels" in text.split('id="run0-neighbours"')[1]
    section = text.split('id="run0-interpolation"')[1].split("</section>")[0]
    assert "image/gif" in section and "image/png" in section
    assert "model.name" not in text and "name: dcgan" in text  # config.yaml shown as written


def test_report_with_eval_numbers_and_comparison(gan_run, tmp_path, with_eval):
    a = with_eval(gan_run, tmp_path / "dcgan", [80.0, 60.0, 55.0])
    out = build_report([a, gan_run], tmp_path / "cmp.html", log=lambda *_: None)
    text = out.read_text()
    page = check_self_contained(text)
    assert page.sections[:2] == ["comparison-metrics", "comparison-curves"]
    assert page.sections[2:] == [f"run{i}-{s}" for i in range(2) for s in RUN_SECTIONS]
    cmp = text.split('id="comparison-metrics"')[1].split("</section>")[0]
    assert "<td>55</td>" in cmp and "not evaluated" in cmp  # the second run has no numbers
    curves = text.split('id="comparison-curves"')[1].split("</section>")[0]
    assert curves.count("<img") == 1
    run0 = text.split('id="run0-metrics"')[1].split("</section>")[0]
    assert "from eval.json" in run0 and "<td>FID</td>" in run0 and "classifier" in run0  # protocol shown
    decode_all(page)


def test_vae_report_draws_latent_maps(vae_run, tmp_path):
    text = build_report([vae_run], tmp_path / "vae.html", log=lambda *_: None).read_text()
    page = check_self_contained(text)
    latent = text.split('id="run0-latent"')[1].split("</section>")[0]
    assert latent.count("<img") == 3 and "2-D latent plane" in latent and "coloured by class" in latent
    decode_all(page)


def make_sweep(gan_run: Path, root: Path) -> Path:
    """A finished 2x2 sweep folder built from copies of one run, with FIDs in eval.json."""
    fids = {("16", "16"): [83.7, 90.0], ("16", "100"): [43.4, 50.0], ("100", "16"): [79.2, 81.0],
            ("100", "100"): [41.9, 44.0]}
    runs = []
    for (ld, hd), per_seed in fids.items():
        cell = f"latent_dim={ld},hidden_dim={hd}"
        for seed, fid in enumerate(per_seed):
            rel = f"{cell}/seed={seed}"
            shutil.copytree(gan_run, root / rel)
            (root / rel / "eval.json").write_text(json.dumps({"fid": fid, "protocol": {"features": "classifier"}}))
            runs.append({"cell": cell, "values": {"model.latent_dim": int(ld), "model.hidden_dim": int(hd)},
                         "seed": seed, "path": rel})
    (root / "sweep.json").write_text(json.dumps({
        "name": "latent-hidden", "description": "latent_dim x hidden_dim", "base": "configs/x.yaml",
        "overrides": {"train.epochs": 3}, "grid": {"model.latent_dim": [16, 100], "model.hidden_dim": [16, 100]},
        "seeds": [0, 1], "keys": ["model.latent_dim", "model.hidden_dim"], "runs": runs}))
    return root


def test_sweep_report(gan_run, tmp_path):
    sweep = make_sweep(gan_run, tmp_path / "sweep")
    text = build_report([sweep], tmp_path / "s.html", log=lambda *_: None).read_text()
    page = check_self_contained(text)
    assert page.sections == ["sweep-setup", "sweep-results", "sweep-runs", "sweep-samples"]
    results = text.split('id="sweep-results"')[1].split("</section>")[0]
    assert "<td>41.9</td>" in results and "<td>42.95 ± 1.5</td>" in results  # best and mean ± std of 41.9, 44.0
    assert results.count("<img") == 1  # the heatmap
    samples = text.split('id="sweep-samples"')[1].split("</section>")[0]
    assert samples.count("<img") == 4 and "seed 0 (best FID seed)" in samples
    decode_all(page)


def test_report_cli_on_a_run_without_eval(gan_run, tmp_path):
    from genlab.cli import app

    run = tmp_path / "demo"
    shutil.copytree(gan_run, run)
    res = CliRunner().invoke(app, ["report", str(run), "-o", str(run / "report.html")])
    assert res.exit_code == 0, res.output
    assert "report written" in res.output and str(run / "report.html") in res.output.replace("\n", "")
    assert (run / "report.html").stat().st_size > 10_000
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "is not a folder" in str(res.exception)


def test_report_loads_cleanly_in_chromium(gan_report, tmp_path, inspect_page):
    assert CHROMIUM.exists(), f"no Chromium at {CHROMIUM}: apt-get install -y chromium (make test does)"
    url = gan_report.resolve().as_uri()
    for width in (390, 1280):  # a phone and a laptop
        facts = inspect_page(str(CHROMIUM), str(tmp_path / f"profile{width}"), url, width)
        assert facts["problems"] == [] and facts["requests"] == []
        assert facts["images"] and all(ok and w > 0 and h > 0 for ok, w, h in facts["images"]), facts["images"]
        assert facts["sections"] == [f"run0-{s}" for s in RUN_SECTIONS]
        assert facts["scrollWidth"] <= facts["innerWidth"] == width  # nothing overflows sideways
    # the harness does see problems: a broken page fails every check above
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>b</title></head><body>'
                   '<img src="data:image/png;base64,AAAA"><img src="missing.png">'
                   '<div style="width:2000px">wide</div><script>console.error("boom")</script></body></html>')
    facts = inspect_page(str(CHROMIUM), str(tmp_path / "profile-bad"), bad.resolve().as_uri(), 390)
    assert any("boom" in p for p in facts["problems"]) and any("missing.png" in p for p in facts["problems"])
    assert not all(w > 0 for _, w, _ in facts["images"]) and facts["scrollWidth"] > facts["innerWidth"]
    assert any(r.endswith("missing.png") for r in facts["requests"])
