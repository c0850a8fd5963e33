"""The platforms a connection receives webhooks from, one module each: adding a platform is
adding a module here that defines ``PLATFORM``, a ``base.Platform``."""

import importlib
import pkgutil

from tidings.webhooks.platforms.base import Platform


def _discover() -> dict[str, Platform]:
    found = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            platform: Platform = importlib.import_module(f"{__name__}.{module.name}").PLATFORM
            found[platform.name] = platform
    return dict(sorted(found.items()))


#: Every platform, by the name --platform takes.
PLATFORMS = _discover()
