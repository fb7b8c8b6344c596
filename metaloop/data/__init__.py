"""Datasets as class-indexed uint8 tensors: Omniglot, mini-ImageNet, your own image folders."""

from metaloop.data.base import ClassDataset, Splits
from metaloop.data.cache import default_cache_dir, load_or_build, sha256_file
from metaloop.data.check import check_dataset
from metaloop.data.folder import load_image_folder
from metaloop.data.mini_imagenet import load_mini_imagenet, load_mini_imagenet_splits
from metaloop.data.omniglot import alphabet_of, load_omniglot_characters, omniglot_alphabets
from metaloop.data.omniglot_splits import LAKE_VAL_ALPHABETS, load_omniglot
from metaloop.data.root import resolve_data_root

__all__ = [
    "ClassDataset",
    "Splits",
    "LAKE_VAL_ALPHABETS",
    "alphabet_of",
    "check_dataset",
    "default_cache_dir",
    "load_image_folder",
    "load_mini_imagenet",
    "load_mini_imagenet_splits",
    "load_omniglot",
    "load_omniglot_characters",
    "load_or_build",
    "omniglot_alphabets",
    "resolve_data_root",
    "sha256_file",
]
