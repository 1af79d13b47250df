"""``armirror completion``: the shell completion script, to source from a shell's rc file."""

from __future__ import annotations

import click


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL: commands, options and their choices.

    \b
      bash:  eval "$(armirror completion bash)"     (in ~/.bashrc)
      zsh:   eval "$(armirror completion zsh)"      (in ~/.zshrc)
      fish:  armirror completion fish > ~/.config/fish/completions/armirror.fish
    """
    from click.shell_completion import get_completion_class

    from armirror.cli import cli

    completer = get_completion_class(shell)
    if completer is None:  # click knows these three; kept for a future click without one
        raise click.BadParameter(f"no completion for {shell}", param_hint="SHELL")
    click.echo(completer(cli, {}, "armirror", "_ARMIRROR_COMPLETE").source())
