"""Text-conditional GANs (report 004): G and D conditioned on each image's caption as a bag of words.

``setup`` builds the vocabulary from the training captions (the dataset's own, else class templates), gives it
to the networks and returns it for the checkpoint (``extra["text"]``), so ``genlab sample --prompt`` can encode
new captions. Each image's caption is stored as word indices (a ``CaptionTable`` bound to the model's
TextConditioning) and turned into a bag per batch (``batch.idx``); a batch without indices (e.g. a benchmark)
falls back to its labels' class captions.
"""
from __future__ import annotations

import torch

from genlab.data.captions import Vocabulary, class_caption, dataset_captions
from genlab.models.conditioning import CaptionTable
from genlab.models.textcond import set_text_vocabulary, text_state
from genlab.training.families.adversarial import AdversarialObjective
from genlab.training.phases import OBJECTIVES, StepContext

CAPTION_BANK = 1024  # distinct training captions kept in the checkpoint (metrics draw from them)


@OBJECTIVES.register("text-gan")
class TextGANObjective(AdversarialObjective):
    """G(z, bag) and D(x, bag) for the caption of each real image; any loss, n_critic, DiffAugment."""

    vocab_size: int = 0
    ids: torch.Tensor | None = None
    class_bags: torch.Tensor | None = None

    def setup(self, data, ctx: StepContext) -> dict:
        captions, source = dataset_captions(data)
        vocab = Vocabulary.from_captions(captions)
        class_captions = self.class_captions(data, captions, source)
        bank = list(dict.fromkeys(c for c in captions if c))[:CAPTION_BANK]
        state = text_state(vocab, class_captions, bank, source)
        set_text_vocabulary(ctx.nets, state)
        self.vocab_size = len(vocab)
        self.ids = vocab.token_ids(captions).to(ctx.device)
        self.class_bags = vocab.bags(class_captions).to(ctx.device) if class_captions else None
        self.conditioning = self.conditioning.with_captions(  # type: ignore[attr-defined]  # TextConditioning
            CaptionTable(self.ids, self.vocab_size, self.class_bags))
        return {"text": state}

    @staticmethod
    def class_captions(data, captions: list[str], source: str) -> list[str]:
        """The caption that stands for each class (what ``G(z, label)`` draws): the template caption, or with
        shipped captions the first caption of an image of that class."""
        if data.labels is None or not data.class_names:
            return []
        out = [class_caption(n) for n in data.class_names]
        if source == "captions":
            for i, k in reversed(list(enumerate(data.labels.tolist()))):
                if captions[i]:
                    out[k] = captions[i]
        return out


@OBJECTIVES.register("text-wgan-gp")
class TextWGANGPObjective(TextGANObjective):
    """The text-conditional GAN with a critic kept Lipschitz by the gradient penalty (report 004's WGAN)."""

    penalty = True
