"""``bias-audit completion bash|zsh``: a shell completion script generated from the argument parser itself
(subcommands and each one's options), so it cannot drift from the CLI. No extra dependency."""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh")


def _words(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each command path ('' for the top level, 'data' ...) -> the words that may follow it."""
    out: dict[str, list[str]] = {}

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        words: list[str] = []
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    words.append(name)
                    walk(sub, f"{path} {name}".strip())
            elif action.option_strings:
                words += [o for o in action.option_strings if o.startswith("--")]
            elif action.choices:
                words += [str(c) for c in action.choices]
        out[path] = words

    walk(parser, "")
    return out


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    cases = []
    for path, words in sorted(_words(parser).items(), key=lambda kv: -len(kv[0])):
        cases.append(f'        "{path}") words="{" ".join(words)}" ;;')
    body = "\n".join(cases)
    script = f'''_bias_audit() {{
    local cur path="" w i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        [[ $w == -* ]] && continue
        case "${{path:+$path }}$w" in
{chr(10).join(f'            "{p}") path="{p}" ;;' for p in sorted(_words(parser)) if p)}
        esac
    done
    local words
    case "$path" in
{body}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    [[ ${{#COMPREPLY[@]}} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
}}
complete -F _bias_audit bias-audit
'''
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script
