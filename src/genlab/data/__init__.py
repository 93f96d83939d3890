"""Datasets: locate or download raw files, decode and resize them once, cache, and hand over ``ImageData``.

    from genlab.data import DATASETS, load_dataset, dataset_info, prepare_dataset

``DATASETS`` names the sources (mnist, fashion-mnist, cifar10, flowers102, image-folder); each source
module registers itself on import below.
"""
from genlab.data import cifar, flowers, folder, idx  # noqa: F401  (registration)
from genlab.data.base import DataWarning, ImageData, data_identity, to_float, to_uint8
from genlab.data.loading import dataset_info, load_dataset, prepare_dataset, prepared_file
from genlab.data.sources import DATASETS, DatasetInfo, DatasetSource, RemoteFile

__all__ = [
    "DATASETS",
    "DataWarning",
    "DatasetInfo",
    "DatasetSource",
    "ImageData",
    "RemoteFile",
    "data_identity",
    "dataset_info",
    "load_dataset",
    "prepare_dataset",
    "prepared_file",
    "to_float",
    "to_uint8",
]
