"""The `lsr` click group: user-facing errors as one line and an exit status.

Command modules import `main` from here and register on it; `lsr/cli/__init__.py`
imports them (so no command module imports the package that imports it).
"""

from __future__ import annotations

import sys

import click
from click.exceptions import NoArgsIsHelpError

from lsr.core.topology import TopologyError
from lsr.errors import LsrError


def _click_error(ctx: click.Context, e: click.ClickException) -> None:
    """A usage error (bad option value, missing argument, unknown command) as
    one line instead of click's usage block; a group called without a
    subcommand still prints its help."""
    if isinstance(e, NoArgsIsHelpError):
        raise e
    msg = " ".join(e.format_message().split())
    if isinstance(e, click.UsageError):
        path = (e.ctx or ctx).command_path
        msg = f"{msg} (see '{path} --help')"
    click.echo(f"lsr: {msg}", err=True)
    ctx.exit(e.exit_code)


class LsrGroup(click.Group):
    """Turns user-facing errors into one line on stderr and an exit status."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.ClickException as e:
            _click_error(ctx, e)
            raise  # not reached: ctx.exit raises

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            _click_error(ctx, e)
        except TopologyError as e:
            click.echo(f"lsr: {e}", err=True)
            ctx.exit(2)
        except LsrError as e:
            click.echo(f"lsr: {e}", err=True)
            ctx.exit(e.code)
        except MemoryError:
            click.echo("lsr: out of memory", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(1)
        except KeyboardInterrupt as e:
            # Commands that build something (lab up) clean up and exit themselves;
            # Interrupted (SIGTERM, SIGHUP) carries its signal, Ctrl-C is SIGINT.
            why = f" ({e.name})" if hasattr(e, "name") else ""
            click.echo(f"lsr: interrupted{why}", err=True)
            ctx.exit(128 + getattr(e, "signum", 2))
        except OSError as e:
            # A path the user gave that cannot be read or written (-o, -w, ...).
            if e.filename is None or e.strerror is None:
                raise
            click.echo(f"lsr: {e.filename}: {e.strerror}", err=True)
            ctx.exit(2)


@click.group(cls=LsrGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lsr")
def main() -> None:
    """lsr: an MPLS label-switching router emulator (LDP, userspace MPLS, netns labs)."""
