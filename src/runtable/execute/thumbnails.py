"""PNG rendering for summaries and stored figures.

Figures are rendered with matplotlib's Agg renderer working on the ``Figure`` object
directly, never through pyplot, so the user's chosen backend and open windows are
left alone. 2-D data is drawn with Pillow and a built-in colour map, so a run that
returns images never pays for importing matplotlib. Both are imported only when a
value needs them.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

#: Largest dimension, in pixels, of a summary thumbnail.
THUMBNAIL_SIZE = 300


def figure_rgba(fig: Any) -> np.ndarray:
    """Render a matplotlib figure at its own size and dpi as an ``(h, w, 4)`` uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # A new canvas attaches itself to the figure; put the user's canvas back so an
    # interactive figure keeps working after we have rendered it.
    old_canvas = fig.canvas
    try:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()
    finally:
        fig.set_canvas(old_canvas)


def rgba_to_png(rgba: np.ndarray, max_size: int | None = THUMBNAIL_SIZE) -> bytes:
    """Encode an RGBA image as PNG, resized so its largest dimension is ``max_size``."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8))
    if max_size is not None:
        w, h = image.size
        scale = max_size / max(w, h)
        if scale != 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="png")
    return buf.getvalue()


def figure_thumbnail(fig: Any) -> bytes:
    """PNG of a matplotlib figure whose largest dimension is 300 px."""
    return rgba_to_png(figure_rgba(fig))


def image_thumbnail(data: np.ndarray) -> bytes:
    """A 300x300 RGBA PNG of 2-D data (viridis, no axes, aspect kept, transparent
    margins), row 0 at the top.

    The colour scale spans the 1st-99th percentile so a few hot pixels don't wash out
    the image; NaNs are drawn as zero. Drawn with Pillow and a built-in colour map
    rather than matplotlib, whose import would dominate a short run's time.
    """
    from PIL import Image

    from ._viridis import VIRIDIS

    arr = np.asarray(data, dtype=np.float64)
    with warnings.catch_warnings():
        # All-NaN images give NaN quantiles; the scale then comes from the zeros.
        warnings.simplefilter("ignore", RuntimeWarning)
        vmin, vmax = np.nanquantile(arr, [0.01, 0.99])
    arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        vmin, vmax = arr.min(), arr.max()
    span = vmax - vmin
    norm = (arr - vmin) / span if span > 0 else np.zeros_like(arr)

    h, w = norm.shape
    scale = THUMBNAIL_SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Average when shrinking (keeps noise from aliasing); crisp pixels when enlarging.
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST
    resized = Image.fromarray(norm.astype(np.float32), mode="F").resize(size, resample)
    index = np.clip(np.asarray(resized) * 255 + 0.5, 0, 255).astype(np.uint8)
    rgba = np.empty((*index.shape, 4), dtype=np.uint8)
    rgba[..., :3] = VIRIDIS[index]
    rgba[..., 3] = 255

    canvas = Image.new("RGBA", (THUMBNAIL_SIZE, THUMBNAIL_SIZE), (0, 0, 0, 0))
    offset = ((THUMBNAIL_SIZE - size[0]) // 2, (THUMBNAIL_SIZE - size[1]) // 2)
    canvas.paste(Image.fromarray(rgba), offset)
    buf = io.BytesIO()
    canvas.save(buf, format="png")
    return buf.getvalue()


#: Longest wait for one plotly thumbnail; the first in a process also starts the
#: renderer's browser (about 1-3 s, more on a loaded machine).
PLOTLY_TIMEOUT_S = 30.0

_plotly_lock = threading.Lock()
_plotly_scope: Any = None
_plotly_stuck = False


def plotly_thumbnail(fig: Any, timeout: float = PLOTLY_TIMEOUT_S) -> bytes | None:
    """PNG of a plotly figure (largest dimension 300 px), or None when it can't be made.

    Rendered by kaleido: version 0.2 (a dependency of runtable) with the headless
    Chromium inside its wheel, offline, one browser per process kept for further
    figures; version 1 or later (if installed instead) through plotly, which needs a
    Chrome. In a background thread with a time limit, so a missing or hung browser
    costs at most ``timeout`` seconds once per process, never the run's other results.
    """
    global _plotly_stuck
    render = _plotly_renderer()
    if render is None or _plotly_stuck:
        return None
    result: list[bytes] = []

    def work() -> None:
        # Any kaleido/browser failure just means no thumbnail.
        with contextlib.suppress(Exception), _plotly_lock:
            result.append(render(fig))

    thread = threading.Thread(target=work, name="plotly-thumbnail", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        _plotly_stuck = True  # don't wait again in this process
        return None
    if not result:
        return None
    from PIL import Image

    image = Image.open(io.BytesIO(result[0])).convert("RGBA")
    return rgba_to_png(np.asarray(image))


def _plotly_renderer() -> Callable[[Any], bytes] | None:
    import importlib.metadata
    import importlib.util

    if importlib.util.find_spec("kaleido") is None:
        return None
    try:
        major = int(importlib.metadata.version("kaleido").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    if major >= 1:
        return lambda fig: fig.to_image(format="png")
    return _render_with_scope


def _render_with_scope(fig: Any) -> bytes:
    """Render with kaleido 0.2's own browser, kept for the process's next figures.

    plotly.js comes from the installed plotly package and MathJax is off, so nothing
    is fetched from the network (plotly >= 6 no longer drives kaleido 0.2 itself).
    """
    global _plotly_scope
    if _plotly_scope is None:
        from pathlib import Path

        import plotly
        from kaleido.scopes.plotly import PlotlyScope

        js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        _plotly_scope = PlotlyScope(plotlyjs=str(js) if js.is_file() else None,
                                    mathjax=False)
    return _plotly_scope.transform(fig, format="png")
