import dataclasses

from genlab.config import LEGACY_OBJECTIVE_KEYS
from genlab.models import MODELS
from genlab.objectives.options import OPTIONS
from genlab.training.families import OBJECTIVES


def test_every_objective_has_options_and_every_model_an_objective():
    assert OBJECTIVES.names() == OPTIONS.names()
    for _, spec in MODELS.items():
        assert spec.objective in OBJECTIVES


#: options added after 0.1.0 (never in train:, so no 0.1.0 config holds them)
NEWER_OPTIONS = {"gamma", "reg_every", "lecam", "lecam_decay", "ada_target", "ada_interval", "ada_images",
                 # flow matching and EDM (genlab 0.1.0 had neither)
                 "solver", "steps", "guidance", "label_dropout", "ot_pairing", "time_sampling", "logit_mean",
                 "logit_std", "sigma_data", "p_mean", "p_std", "sigma_min", "sigma_max", "rho"}


def test_option_defaults_are_the_010_defaults():
    # a 0.1.0 config drops train.<option> at its default: every objective must read the same default
    for _, cls in OPTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name in NEWER_OPTIONS:
                assert f.name not in LEGACY_OBJECTIVE_KEYS, f.name
                continue
            assert f.name in LEGACY_OBJECTIVE_KEYS and f.default == LEGACY_OBJECTIVE_KEYS[f.name], (cls, f.name)
