"""Oxford Flowers-102: 102flowers.tgz (jpg/image_NNNNN.jpg), imagelabels.mat (1..102), setid.mat (splits).

Splits follow setid.mat: ``train`` = trnid, ``val`` = valid, ``test`` = tstid, in the order listed there.
The photos are read from the archive in place and centre-cropped to squares.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from genlab.data.archive import read_members
from genlab.data.images import decode_all
from genlab.data.sources import DATASETS, DatasetSource, Decoded, LoadOptions, RemoteFile
from genlab.errors import DataError

ARCHIVE = "102flowers.tgz"
LABELS = "imagelabels.mat"
SETID = "setid.mat"
SPLIT_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}
MAX_MEMBER_BYTES = 16 << 20  # the published photos are JPEGs of at most a few hundred KiB

CLASS_NAMES = (
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
    "tiger lily", "moon orchid", "bird of paradise", "monkshood", "globe thistle", "snapdragon",
    "colt's foot", "king protea", "spear thistle", "yellow iris", "globe-flower", "purple coneflower",
    "peruvian lily", "balloon flower", "giant white arum lily", "fire lily", "pincushion flower",
    "fritillary", "red ginger", "grape hyacinth", "corn poppy", "prince of wales feathers",
    "stemless gentian", "artichoke", "sweet william", "carnation", "garden phlox", "love in the mist",
    "mexican aster", "alpine sea holly", "ruby-lipped cattleya", "cape flower", "great masterwort",
    "siam tulip", "lenten rose", "barbeton daisy", "daffodil", "sword lily", "poinsettia",
    "bolero deep blue", "wallflower", "marigold", "buttercup", "oxeye daisy", "common dandelion",
    "petunia", "wild pansy", "primula", "sunflower", "pelargonium", "bishop of llandaff", "gaura",
    "geranium", "orange dahlia", "pink-yellow dahlia", "cautleya spicata", "japanese anemone",
    "black-eyed susan", "silverbush", "californian poppy", "osteospermum", "spring crocus",
    "bearded iris", "windflower", "tree poppy", "gazania", "azalea", "water lily", "rose",
    "thorn apple", "morning glory", "passion flower", "lotus", "toad lily", "anthurium", "frangipani",
    "clematis", "hibiscus", "columbine", "desert-rose", "tree mallow", "magnolia", "cyclamen",
    "watercress", "canna lily", "hippeastrum", "bee balm", "ball moss", "foxglove", "bougainvillea",
    "camellia", "mallow", "mexican petunia", "bromelia", "blanket flower", "trumpet creeper",
    "blackberry lily",
)  # fmt: skip


def _loadmat(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat  # scipy is only needed for this dataset

    try:
        mat = loadmat(path)
    except Exception as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if key not in mat:
        raise DataError(f"{path} has no {key!r} entry")
    return np.asarray(mat[key]).ravel().astype(np.int64)


class Flowers102(DatasetSource):
    name = "flowers102"
    description = "Oxford 102 Flowers photos, RGB, varied sizes; 1020 train / 1020 val / 6149 test"
    splits = ("train", "val", "test")
    class_names = CLASS_NAMES
    base_url = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
    files = (
        RemoteFile(ARCHIVE, "52808999861908f626f3c1f4e79d11fa"),
        RemoteFile(LABELS, "e0620be6f572b9609742df49c70aed4d"),
        RemoteFile(SETID, "a5357ecc9cb78c4bef273ce3793fc85c"),
    )
    default_resolution = 64

    def decode(self, folder: Path, split: str, opts: LoadOptions) -> Decoded:
        labels = _loadmat(folder / LABELS, "labels")
        ids = _loadmat(folder / SETID, SPLIT_KEYS[split])
        if labels.size and (labels.min() < 1 or labels.max() > len(CLASS_NAMES)):
            raise DataError(f"{folder / LABELS}: labels outside 1..{len(CLASS_NAMES)}")
        if ids.size and (ids.min() < 1 or ids.max() > len(labels)):
            raise DataError(f"{folder / SETID}: image ids outside 1..{len(labels)}")
        slot = {f"jpg/image_{i:05d}.jpg": k for k, i in enumerate(ids.tolist())}
        if len(slot) != len(ids):
            raise DataError(f"{folder / SETID}: the {split} split lists an image twice")
        members = read_members(folder / ARCHIVE, lambda n: n in slot, MAX_MEMBER_BYTES)
        names: list[str] = []
        seen: set[str] = set()

        def items():
            for name, data in members:
                if name in seen:
                    continue
                seen.add(name)
                names.append(name)
                yield name, data

        # Members arrive in archive order; a broken official photo is an error, not a skip.
        images, kept, _, _ = decode_all(items(), opts.resolution, opts.channels, strict=True)
        if len(kept) != len(slot):
            missing = sorted(set(slot) - set(names))
            raise DataError(f"{folder / ARCHIVE} lacks {len(missing)} photo(s) of the {split} split, e.g. {missing[0]}")
        order = np.argsort([slot[names[i]] for i in kept], kind="stable")
        return Decoded(
            images=np.ascontiguousarray(images[order]),
            labels=labels[ids - 1] - 1,
            class_names=list(CLASS_NAMES),
        )


DATASETS.add(Flowers102.name, Flowers102())
