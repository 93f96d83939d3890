"""genlab: train, evaluate and compare image generative models (GANs and VAEs).

The Python API (docs/python_api.md)::

    import genlab
    run = genlab.train("configs/demo_fashion_mnist_dcgan.yaml", ["train.epochs=1"], run_dir="runs/demo")
    run.sample(16, seed=3); run.evaluate(metrics="fid"); run.plot_curves()
    genlab.export_generator("runs/demo", "export/demo"); genlab.load_generator("export/demo").sample(16)

``import genlab`` loads nothing else: these names import their module (and torch) on first use (PEP 562).
"""

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "train": "genlab.api",
    "load_run": "genlab.api",
    "evaluate": "genlab.api",
    "Run": "genlab.api",
    "save_images": "genlab.api",
    "Callback": "genlab.training.callbacks",
    "compare": "genlab.api",
    "to_image": "genlab.api",
    "search": "genlab.api",
    "export_generator": "genlab.export",
    "load_generator": "genlab.hub",  # an export folder or a Hub repo id
    "push_to_hub": "genlab.hub",
    "ExportedGenerator": "genlab.export",
    "feature_stats": "genlab.scoring",
    "EvalOptions": "genlab.metrics",
    "EvalRequest": "genlab.evaluation",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'genlab' has no attribute {name!r}")
    import importlib  # here, not at the top: `import genlab` alone should not pay for it

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
