"""Checks on written image files, with PIL (independent of matplotlib)."""

from PIL import Image


def png_size(path):
    """``(width, height)`` of a PNG, after checking it is one."""
    with Image.open(path) as image:
        assert image.format == "PNG", f"{path} is {image.format}, not PNG"
        image.verify()
        return image.size


def gif_info(path):
    """``(width, height, frames, ms per frame)`` of a GIF, after checking it is one."""
    with Image.open(path) as image:
        assert image.format == "GIF", f"{path} is {image.format}, not GIF"
        return image.size[0], image.size[1], image.n_frames, image.info.get("duration")
