"""`sectl report`: a static listening page of enhanced folders, with the scores `sectl eval` computes.

:mod:`sectl.report.data` scores the systems and chooses the utterances, :mod:`sectl.report.media` writes
the audio and spectrograms beside the page, :mod:`sectl.report.page` renders ``index.html`` from the
package's ``page.html``, ``page.js`` and ``page.css`` (inline: the page opens from ``file://`` and requests
nothing from any network). :func:`build_report` runs the three.
"""

from sectl.report.build import build_report

__all__ = ["build_report"]
