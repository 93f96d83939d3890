"""Text conditioning: captions -> vocabulary -> bag of words; the vocabulary lives in the checkpoint and
`genlab sample --prompt` encodes new captions with it, reporting the words it does not know."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from typer.testing import CliRunner

from genlab.checkpoint import load_checkpoint
from genlab.data.base import ImageData
from genlab.data.captions import (
    Vocabulary,
    bags_from_ids,
    class_caption,
    class_phrases,
    dataset_captions,
    template_captions,
    tokenize,
)
from genlab.errors import ConfigError, GenlabError
from genlab.models import MODELS
from genlab.models.textcond import set_text_vocabulary, text_state
from genlab.recipe import build_networks, load_config
from genlab.sampling import load_run, sample_prompt
from genlab.training.loop import Trainer, fit, prepare_run

CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]




def test_tokens_phrases_and_template_captions():
    assert tokenize("A red T-shirt, isn't it?") == ["a", "red", "t-shirt", "isn't", "it"]
    assert class_phrases("T-shirt/top") == ["t-shirt", "top"]
    assert class_phrases("automobile") == ["automobile", "car"]
    assert class_caption("ship") == "a photo of a ship"
    assert class_caption("airplane") == "a photo of an airplane"
    caps = template_captions(CIFAR, [1] * 8)
    assert caps[:4] == ["a photo of an automobile", "a picture of an automobile", "an image of an automobile",
                        "an automobile"]
    assert caps[4] == "a photo of a car"


def test_vocabulary_bags_and_unknown_words():
    vocab = Vocabulary.from_captions(template_captions(CIFAR, list(range(10))))
    assert list(vocab.words) == sorted(vocab.words) and "car" not in vocab.words  # one caption per class here
    vocab = Vocabulary.from_captions(template_captions(CIFAR, [i // 8 for i in range(80)]))
    assert "car" in vocab.words and "ship" in vocab.words
    bag, unknown = vocab.encode("A red car on the road")
    assert unknown == ["red", "on", "the", "road"]
    assert bag.sum() == 2 and bag[vocab.index["car"]] == 1 and bag[vocab.index["a"]] == 1
    caps = ["a photo of a ship", "a ship", "purple car", ""]
    ids = vocab.token_ids(caps)
    assert torch.equal(bags_from_ids(ids, len(vocab)), vocab.bags(caps))
    assert vocab.bags(caps)[3].sum() == 0 and vocab.bags(caps)[0].sum() == 4  # a, photo, of, ship


def test_captions_come_from_the_data_else_from_class_templates():
    imgs = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    assert dataset_captions(ImageData(imgs, captions=["x", "y", None]))[0] == ["x", "y", ""]
    caps, source = dataset_captions(ImageData(imgs, labels=torch.tensor([0, 1, 0]), class_names=["cat", "dog"]))
    assert source == "class templates" and caps[1] == "a picture of a dog"
    with pytest.raises(ConfigError, match="needs captions"):
        dataset_captions(ImageData(imgs))


def text_run(tmp_path, data: ImageData, extra=()) -> Trainer:
    cfg = load_config(None, ["model.name=text-dcgan", "data.resolution=32", "data.channels=3", "model.hidden_dim=4",
                             "model.latent_dim=6", "model.embed_dim=8", "train.batch_size=4", "train.max_steps=2",
                             "log.progress=false", "log.tensorboard=false", "log.num_samples=4", "train.threads=1",
                             "train.device=cpu", *extra])
    trainer = Trainer(cfg, prepare_run(cfg, tmp_path / "run"), data, log=lambda *_: None)
    fit(trainer)
    return trainer


def cifar_like(n: int = 40) -> ImageData:
    return ImageData(images=torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), labels=torch.arange(n) % 10,
                     class_names=CIFAR, name="cifar-like")


def test_vocabulary_is_saved_and_prompts_are_encoded_with_it(tmp_path):
    trainer = text_run(tmp_path, cifar_like())
    ckpt = load_checkpoint(next((tmp_path / "run" / "checkpoints").glob("step_*.pt")))
    text = ckpt["extra"]["text"]
    assert text["vocab"] == list(Vocabulary.from_captions(template_captions(CIFAR, [i % 10 for i in range(40)])).words)
    assert text["class_captions"][1] == "a photo of an automobile" and text["source"] == "class templates"
    run = load_run(tmp_path / "run")
    G = run.generator
    for module in (G.cond, run.nets["D"].cond):
        assert module.vocab_size == len(text["vocab"])
    assert torch.equal(G.state_dict()["cond.proj.weight"], trainer.state.nets["G"].state_dict()["cond.proj.weight"])
    notes: list[str] = []
    images = sample_prompt(run, "a red car", 5, seed=0, log=notes.append)
    assert images.shape == (5, 3, 32, 32)
    assert next(n for n in notes if "vocabulary" in n).split(";")[0].endswith("(ignored): red")
    bag, _ = Vocabulary(tuple(text["vocab"])).encode("a car")
    assert torch.equal(images, run.generate(run.latents(5, 0), bag.expand(5, -1)))
    assert not torch.equal(images, sample_prompt(run, "a ship", 5, seed=0, log=notes.append))
    with pytest.raises(GenlabError, match="no word of the prompt"):
        sample_prompt(run, "purple elephant", 2, log=notes.append)
    assert run.sampler(seed=0)(7).shape == (7, 3, 32, 32)


def test_shipped_captions_without_labels(tmp_path):
    caps = ["a red flower", "a yellow flower", "two red roses", "a white daisy"] * 3
    data = ImageData(images=torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8), captions=caps, name="folder")
    text_run(tmp_path, data)
    run = load_run(tmp_path / "run")
    assert run.num_classes == 0 and run.extra["text"]["source"] == "captions"
    assert run.extra["text"]["caption_bank"] == caps[:4]
    assert run.sample(4).shape == (4, 3, 32, 32)  # G(z): cycles through training captions
    assert run.sampler(seed=0)(5).shape == (5, 3, 32, 32)
    assert sample_prompt(run, "a red rose", 3, log=lambda *_: None).shape == (3, 3, 32, 32)
    with pytest.raises(GenlabError, match="--prompt needs a text-conditional model"):
        sample_prompt(dataclasses.replace(run, spec=MODELS.get("dcgan")), "a rose", 1)


def test_text_model_without_captions_or_labels_is_a_config_error(tmp_path):
    data = ImageData(images=torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), name="folder")
    with pytest.raises(ConfigError, match="needs captions"):
        text_run(tmp_path, data)


def test_cli_sample_with_a_prompt_reports_unknown_words(tmp_path):
    from genlab.cli import app

    text_run(tmp_path, cifar_like())
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(app, ["sample", str(tmp_path / "run"), "--prompt", "a shiny red car", "-n", "4",
                                      "-o", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "shiny, red" in result.output and out.is_file()


@pytest.mark.parametrize("resolution,hidden", [(28, 16), (64, 64)])
def test_projection_starts_without_a_caption_dependent_score(resolution, hidden):
    """N(0, 0.5) word vectors made the projection term a caption-dependent logit of hundreds at step 0."""
    torch.manual_seed(0)
    cfg = load_config(None, ["model.name=text-dcgan", "model.cond_d=projection", f"data.resolution={resolution}",
                             "data.channels=3", f"model.hidden_dim={hidden}", "model.latent_dim=16"])
    nets = build_networks(cfg, 10)
    captions = template_captions(CIFAR, list(range(10)))
    vocab = set_text_vocabulary(nets, text_state(Vocabulary.from_captions(captions), captions, captions, "test"))
    x = torch.rand(32, 3, resolution, resolution) * 2 - 1
    with torch.no_grad():
        scores = torch.stack([nets["D"](x, vocab.bags([c] * 32)) for c in captions])
    assert torch.allclose(scores, scores[0].expand_as(scores)), "the caption alone moves D's initial score"
    assert scores.abs().max() < 10, f"D's initial logits reach {scores.abs().max():.0f}"
