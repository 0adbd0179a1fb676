// Shell completion for `trainyard`, generated from the commander command tree so that it
// always offers exactly the verbs and options the CLI has. zsh uses the same function
// through its bash-completion layer (bashcompinit), as zsh documents for bash scripts.
import type { Command } from 'commander';

const word = /^[A-Za-z0-9-]+$/;

/** Words a verb completes: its long and short options, and the choices of its arguments. */
function verbWords(c: Command): string[] {
  const words: string[] = [];
  for (const o of c.options) {
    if (o.long) words.push(o.long);
    if (o.short) words.push(o.short);
  }
  for (const a of c.registeredArguments) for (const ch of a.argChoices ?? []) words.push(ch);
  words.push('--help');
  return words.filter((w) => word.test(w.replace(/^-+/, '')));
}

/**
 * A completion script for `shell`: `eval "$(trainyard completion bash)"` in ~/.bashrc, or
 * the zsh one in ~/.zshrc. Verbs after `trainyard`, each verb's options after it; option
 * values that are paths (-C, -o, --report) complete as files.
 */
export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const verbs = program.commands.map((c) => c.name()).filter((n) => word.test(n));
  const cases = program.commands
    .filter((c) => word.test(c.name()))
    .map((c) => `    ${c.name()}) opts="${verbWords(c).join(' ')}" ;;`)
    .join('\n');
  const fn = `_trainyard() {
  local cur prev verb opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  verb="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${verbs.join(' ')} --help --version" -- "$cur") )
    return 0
  fi
  case "$prev" in
    -C|--dir|-o|--output|--report) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
  esac
  case "$verb" in
${cases}
    *) opts="--help" ;;
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  return 0
}
complete -o default -F _trainyard trainyard
`;
  if (shell === 'bash') return `# bash completion for trainyard: eval "$(trainyard completion bash)"\n${fn}`;
  return `# zsh completion for trainyard: eval "$(trainyard completion zsh)" in ~/.zshrc\nautoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n${fn}`;
}
