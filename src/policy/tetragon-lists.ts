/**
 * Tetragon's `spec.lists`: named sets of kernel functions or syscalls that a
 * kprobe's `call: "list:NAME"` stands for (one hook per member), and that an
 * InMap filter's `"list:NAME"` value stands for (its members' values).
 *
 * tally expands the lists whose members are written out: type "syscalls"
 * (syscall names, hooked as syscalls) and the untyped kind (kernel function
 * names). The generated kinds ("generated_syscalls": every syscall;
 * "generated_ftrace": every traceable function matching a pattern) expand
 * into hundreds of hooks on a typical kernel, past tally's limit of hooks per
 * policy, so a call through one of them is reported, not expanded.
 */
import { Fields, Node } from './reader';
import { LIMITS } from './limits';

export interface TetragonList {
  name: string;
  /** "syscalls", "generated_syscalls", "generated_ftrace", or "" (kernel functions). */
  type: string;
  /** The members as written (absent for the generated kinds). */
  values: string[];
  node: Node;
}

const KEYS = ['name', 'type', 'values', 'pattern', 'validated'] as const;
const TYPES = ['', 'syscalls', 'generated_syscalls', 'generated_ftrace'];

/** Reads spec.lists; a malformed entry is reported where it is written and left out. */
export function readLists(spec: Fields): Map<string, TetragonList> {
  const lists = new Map<string, TetragonList>();
  const n = spec.get('lists');
  if (!n || n.value === null) return lists;
  for (const item of n.list(Number.MAX_SAFE_INTEGER, 'lists') ?? []) {
    const f = item.mapping(KEYS, 'a list with a name, a type and values');
    if (!f) continue;
    const name = f.require('name', 'the list\'s name')?.string();
    const typeNode = f.get('type');
    const type = typeNode?.string() ?? '';
    if (typeNode && !TYPES.includes(type)) {
      typeNode.error(`one of ${TYPES.filter(Boolean).join(', ')}, or no type (kernel functions)`);
      continue;
    }
    const values = (f.get('values')?.list(LIMITS.hooksPerPolicy, 'values') ?? []).map((v) => v.string('a function or syscall name'));
    if (name === undefined || values.some((v) => v === undefined)) continue;
    lists.set(name, { name, type, values: values as string[], node: item });
  }
  return lists;
}

/** Why a call through this list is not expanded, or undefined when it is. */
export function unexpandable(list: TetragonList): string | undefined {
  switch (list.type) {
    case 'generated_syscalls':
      return `list ${list.name} is every syscall of the kernel, hundreds of hooks, past tally's limit of ${LIMITS.hooksPerPolicy} hooks per policy; hook tracepoint raw_syscalls/sys_enter instead, filtered on the syscall id`;
    case 'generated_ftrace':
      return `list ${list.name} is every kernel function matching a pattern, which tally does not expand (it can be past tally's limit of ${LIMITS.hooksPerPolicy} hooks per policy); write the functions out in a list without a type`;
    default:
      return undefined;
  }
}
