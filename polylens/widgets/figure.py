"""A matplotlib figure inside an ipywidgets layout, redrawn in place.

With the ipympl backend (``%matplotlib widget``) the figure's canvas is
itself a widget and redraws without re-sending an image. With any other
backend the figure is shown in an ``Output`` widget and re-displayed.
"""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import display
from matplotlib.figure import Figure


class FigureArea:
    """Holds a figure and knows how to show and refresh it in a widget tree."""

    def __init__(self, fig: Figure) -> None:
        self.fig = fig
        self.live = isinstance(fig.canvas, widgets.DOMWidget)
        if self.live:
            fig.canvas.header_visible = False
            fig.canvas.toolbar_visible = False
            fig.canvas.resizable = False
            self.widget = fig.canvas
        else:
            self.widget = widgets.Output()

    @property
    def front_end_ready(self) -> bool:
        """True once a browser has displayed the ipympl canvas and said so."""
        # ipympl stops syncing a PNG data URL when its front end reports "initialized".
        return self.live and not getattr(self.fig.canvas, "syncing_data_url", True)

    def refresh(self) -> None:
        if self.live:
            if self.front_end_ready:
                # draw() rather than draw_idle(): one round trip less per slider move.
                self.fig.canvas.draw()
            else:
                # A synchronous draw before the browser has shown the canvas leaves
                # it 0 x 0 for good; draw_idle() is safe at any time.
                self.fig.canvas.draw_idle()
        else:
            with self.widget:
                self.widget.clear_output(wait=True)
                display(self.fig)
