"""Interactive explorers that need a running kernel (ipywidgets)."""
from __future__ import annotations

import copy

import torch

from ..nn.mnist import MNISTHyperNet
from .plots import filter_mosaic

__all__ = ["FilterExplorer"]


class FilterExplorer:
    """Live sliders (ipywidgets) for the four components of z and an interpolation slider.

    Each move regenerates conv2's kernel through the trained generator and redraws the 16×16
    filter grid in place (``imshow.set_data``, no new figure).  ``update(z)`` is the redraw,
    exposed so its time can be measured without a browser.
    """

    def __init__(self, model: MNISTHyperNet, z_other: torch.Tensor, vmax: float, slider_range: float = 3.0):
        import ipywidgets as W
        from matplotlib.figure import Figure


        # a private CPU copy of the trained generator: the sliders never depend on where the model lives
        self.generator = copy.deepcopy(model.generator).cpu().eval()
        self.vmax = vmax
        self.z_trained = model.z.detach().cpu().clone()
        self.z_other = z_other.detach().cpu().clone()
        self._mosaic = filter_mosaic
        self.fig = Figure(figsize=(4.6, 4.6))          # not managed by pyplot: never shown twice
        self.ax = self.fig.add_subplot()
        self.image = self.ax.imshow(filter_mosaic(self.kernel(self.z_trained)), cmap="RdBu_r",
                                    vmin=-vmax, vmax=vmax, interpolation="nearest")
        self.ax.set_axis_off()
        lim = float(self.z_trained.abs().max()) * slider_range
        self.z_sliders = [W.FloatSlider(value=float(v), min=-lim, max=lim, step=lim / 100,
                                        description=f"z[{i}]", continuous_update=True)
                          for i, v in enumerate(self.z_trained)]
        self.t_slider = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.02,
                                      description="trained → other", style={"description_width": "initial"})
        self.out = W.Output()
        for s in self.z_sliders:
            s.observe(lambda change: self.update(self._z_from_sliders()), names="value")
        self.t_slider.observe(self._on_t, names="value")
        with self.out:
            from IPython.display import display
            display(self.fig.canvas if hasattr(self.fig.canvas, "layout") else self.fig)
        self.widget = W.HBox([W.VBox(self.z_sliders + [self.t_slider]), self.out])

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.generator(z.cpu())

    def _z_from_sliders(self) -> torch.Tensor:
        return torch.tensor([s.value for s in self.z_sliders], dtype=self.z_trained.dtype)

    def _on_t(self, change) -> None:
        t = change["new"]
        self.update((1 - t) * self.z_trained + t * self.z_other)

    def update(self, z: torch.Tensor) -> None:
        """Regenerate the kernel from z and redraw."""
        self.image.set_data(self._mosaic(self.kernel(z)))
        self.ax.set_title("z = [" + ", ".join(f"{v:+.2f}" for v in z.tolist()) + "]", fontsize=9)
        self.fig.canvas.draw_idle()
        if not hasattr(self.fig.canvas, "layout"):              # inline backend: re-render the PNG
            from IPython.display import clear_output, display
            with self.out:
                clear_output(wait=True)
                display(self.fig)
