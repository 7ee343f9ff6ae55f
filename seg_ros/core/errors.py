"""Exception classes for errors a user can cause.

Every :class:`SegRosError` carries one sentence that names the problem and,
where there is one, the fix. The CLI prints it and exits with status 2; the
node logs it and keeps running.
"""


class SegRosError(Exception):
    """Base class of all user-facing seg_ros errors."""


class InputError(SegRosError):
    """An input (image, video, folder, array) cannot be read or has the wrong shape."""


class ConfigError(SegRosError):
    """A setting (resolution, device, model name, parameter) is invalid."""


def clip(text: object, limit: int = 100) -> str:
    """``str(text)``, cut to ``limit`` characters with its length noted, so that an error echoing a hostile value
    (a 1 MB parameter string, encoding or path) stays one short line."""
    s = str(text)
    return s if len(s) <= limit else f"{s[:limit]}… ({len(s):,} characters)"
