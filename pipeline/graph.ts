// The step graph: cycles to report and the order to run in. Iterative throughout, since a
// 1 MiB file can hold ten thousand steps and recursion that deep overflows the stack.

/** `deps.get(a)` lists the steps `a` needs. Self-loops are ignored here (reported elsewhere). */
export type Dependencies = ReadonlyMap<string, readonly string[]>;

/** One cycle per strongly connected component of two or more steps, as a path `[a, b, …, a]`
 * that starts at the component's first step in file order. */
export function findCycles(steps: readonly string[], deps: Dependencies): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const edges = (n: string) => (deps.get(n) ?? []).filter((d) => d !== n && deps.has(d));

  for (const root of steps) {
    if (index.has(root)) continue;
    const work: { node: string; edge: number }[] = [{ node: root, edge: 0 }];
    index.set(root, next);
    low.set(root, next++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const out = edges(frame.node);
      if (frame.edge < out.length) {
        const to = out[frame.edge++]!;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let n: string;
        do {
          n = stack.pop()!;
          onStack.delete(n);
          component.push(n);
        } while (n !== frame.node);
        if (component.length > 1) components.push(component);
      }
    }
  }

  const position = new Map(steps.map((s, i) => [s, i]));
  return components
    .map((c) => c.sort((a, b) => position.get(a)! - position.get(b)!))
    .sort((a, b) => position.get(a[0]!)! - position.get(b[0]!)!)
    .map((c) => shortestCycleThrough(c[0]!, new Set(c), edges));
}

/** Breadth-first search from `start` back to itself inside one component. */
function shortestCycleThrough(start: string, members: ReadonlySet<string>, edges: (n: string) => string[]): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i]!;
    for (const to of edges(n)) {
      if (!members.has(to)) continue;
      if (to === start) {
        const path = [start];
        for (let at: string | undefined = n; at !== undefined && at !== start; at = parent.get(at)) path.push(at);
        path.push(start);
        // path is start, last, …, first hop, start: reverse the middle to read in dependency order.
        return [start, ...path.slice(1, -1).reverse(), start];
      }
      if (!parent.has(to) && to !== start) {
        parent.set(to, n);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

/** Dependencies first; among steps free to go, file order. Assumes no cycles. */
export function topologicalOrder(steps: readonly string[], deps: Dependencies): string[] {
  const done = new Set<string>();
  const order: string[] = [];
  for (const root of steps) {
    if (done.has(root)) continue;
    const work: { node: string; edge: number }[] = [{ node: root, edge: 0 }];
    const entered = new Set<string>([root]);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const out = (deps.get(frame.node) ?? []).filter((d) => d !== frame.node && deps.has(d));
      if (frame.edge < out.length) {
        const to = out[frame.edge++]!;
        if (!done.has(to) && !entered.has(to)) {
          entered.add(to);
          work.push({ node: to, edge: 0 });
        }
        continue;
      }
      work.pop();
      done.add(frame.node);
      order.push(frame.node);
    }
  }
  return order;
}
