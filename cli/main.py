"""Entry point of the ``garvideo`` command.

The commands only parse arguments, call garvideo's public API and print; a
:class:`garvideo.GarvideoError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import click

from garvideo import GarvideoError, __version__


class _App(click.Group):
    """A click group that turns user-facing errors into one line, never a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except GarvideoError as exc:
            click.echo(f"garvideo: error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_App, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="garvideo")
def app() -> None:
    """Describe and question regions in videos.

    Mark a region once (a box, clicks or a mask, on any frame); garvideo
    tracks it through the video with SAM2 and asks the Grasp Any Region (GAR)
    model to describe it over time or to answer questions about it.
    """


# Commands import click only at module level: heavy imports happen inside them, so --help is fast.
from .app import app_command  # noqa: E402
from .batch import batch_command  # noqa: E402
from .describe import ask_command, describe_command  # noqa: E402
from .info import info_command  # noqa: E402
from .selftest import selftest_command  # noqa: E402
from .track import track_command  # noqa: E402

for _command in (
    describe_command,
    ask_command,
    track_command,
    batch_command,
    info_command,
    app_command,
    selftest_command,
):
    app.add_command(_command)

from .eval import eval_group  # noqa: E402

app.add_command(eval_group)


def main(argv: list[str] | None = None) -> None:
    app.main(args=argv, prog_name="garvideo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
