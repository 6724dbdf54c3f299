"""A DIV2K-layout set of the real photographs available offline, downscaled to clean HR images.

Sources: scikit-image's bundled photos and the Debian packages ``lomiri-wallpapers-16.04`` and
``lomiri-wallpapers-20.04`` (fetched with ``apt-get download``, unpacked with ``dpkg -x`` into a
cache folder, never installed); each photo reviewed by eye, only colour photographs of real
scenes and objects.

HR images: the longest side is brought down to ``hr_long_side`` (Lanczos, after a JPEG DCT-domain
reduction for speed; the downscaling also hides JPEG artefacts), smaller photos stay at native
size, then both sides are cropped to multiples of 12 so that X2/X3/X4 all divide them. LR
images come from ``bicubic_downsample``. The split is by photograph; output ids and files are
those of DIV2K (train 0001.., valid 0801..), with ``manifest.json`` recording every source,
licence and checksum. A second call with the same arguments returns from the manifest.

The modules: :mod:`~nie_core.data.photos.sources` (the allow-list :data:`PHOTOS`, what was
skipped and why, fetching the packages), :mod:`~nie_core.data.photos.hr_images` (:func:`make_hr`,
:func:`write_centre_crops`) and :mod:`~nie_core.data.photos.div2k_layout`
(:func:`build_photo_set` and its manifest).
"""

from nie_core.data.photos.div2k_layout import build_photo_set
from nie_core.data.photos.hr_images import make_hr, write_centre_crops
from nie_core.data.photos.sources import (
    PHOTOS,
    SKIMAGE,
    WALLPAPER_PACKAGES,
    Photo,
    default_debs_dir,
)

__all__ = [
    "PHOTOS",
    "SKIMAGE",
    "WALLPAPER_PACKAGES",
    "Photo",
    "build_photo_set",
    "default_debs_dir",
    "make_hr",
    "write_centre_crops",
]
