"""Entry point of the ``garvideo`` command.

The commands only parse arguments, call garvideo's public API and print; a
:class:`garvideo.GarvideoError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import re
import sys

import click

from garvideo import GarvideoError, __version__

# click >= 8.2 shows a bare group's overview through this usage error; older versions exit 0 without one.
NoArgsIsHelpError = getattr(click.exceptions, "NoArgsIsHelpError", ())


#: The longest error line printed: a message echoing something huge a user typed is cut in the middle.
LONGEST_ERROR = 2000


def one_line(message: str) -> str:
    """The message on one line: a name or a decoder's text may hold newlines."""
    line = re.sub(r"\s*\n\s*", " ", str(message)).strip()
    if len(line) > LONGEST_ERROR:
        line = f"{line[: LONGEST_ERROR // 2]} ... {line[-LONGEST_ERROR // 4 :]}"
    return line


def print_error(message: str) -> None:
    click.echo(f"garvideo: error: {one_line(message)}", err=True)


class _OneLineUsageError(click.ClickException):
    """click's usage error, shown like every other mistake: one line, exit code 2."""

    exit_code = 2

    def __init__(self, error: click.UsageError) -> None:
        message = error.format_message()
        if error.ctx is not None:
            message += f" (see '{error.ctx.command_path} --help')"
        super().__init__(message)

    def show(self, file=None) -> None:
        print_error(self.format_message())


class _App(click.Group):
    """A click group that turns user-facing errors into one line, never a traceback.

    Usage errors raised while parsing the group's own options (``make_context``) or a
    command's (``invoke``) become :class:`_OneLineUsageError`; a bare ``garvideo`` still
    shows the overview, and ``--help`` is untouched.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _OneLineUsageError(exc) from exc

    def invoke(self, ctx: click.Context):  # noqa: D401 - click API
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise _OneLineUsageError(exc) from exc
        except GarvideoError as exc:
            print_error(str(exc))
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
from .live import live_command  # noqa: E402
from .selftest import selftest_command  # noqa: E402
from .serve import serve_command  # noqa: E402
from .track import track_command  # noqa: E402

for _command in (
    describe_command,
    ask_command,
    track_command,
    batch_command,
    info_command,
    app_command,
    live_command,
    serve_command,
    selftest_command,
):
    app.add_command(_command)

from .eval import eval_group  # noqa: E402
from .train import train_command  # noqa: E402

app.add_command(eval_group)
app.add_command(train_command)


def main(argv: list[str] | None = None) -> None:
    app.main(args=argv, prog_name="garvideo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
