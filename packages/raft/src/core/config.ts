import type { ClusterConfig, ConfChange, NodeId } from "./types.js";

export function isVoter(config: ClusterConfig, node: NodeId): boolean {
  return config.voters.includes(node);
}

export function isLearner(config: ClusterConfig, node: NodeId): boolean {
  return config.learners.includes(node);
}

export function isMember(config: ClusterConfig, node: NodeId): boolean {
  return isVoter(config, node) || isLearner(config, node);
}

export function quorumSize(config: ClusterConfig): number {
  return Math.floor(config.voters.length / 2) + 1;
}

/** Voters and learners, excluding `self`: everyone a leader replicates to. */
export function peersOf(config: ClusterConfig, self: NodeId): NodeId[] {
  const peers: NodeId[] = [];
  for (const node of config.voters) if (node !== self) peers.push(node);
  for (const node of config.learners) if (node !== self) peers.push(node);
  return peers;
}

export function configsEqual(a: ClusterConfig, b: ClusterConfig): boolean {
  return (
    a.voters.length === b.voters.length &&
    a.learners.length === b.learners.length &&
    a.voters.every((node, index) => b.voters[index] === node) &&
    a.learners.every((node, index) => b.learners[index] === node)
  );
}

/** Sorted, duplicate-free, voters and learners disjoint: the canonical form every node stores. */
export function makeConfig(voters: readonly NodeId[], learners: readonly NodeId[] = []): ClusterConfig {
  const voterSet = [...new Set(voters)].sort((a, b) => a - b);
  const learnerSet = [...new Set(learners)].filter((node) => !voterSet.includes(node)).sort((a, b) => a - b);
  for (const node of [...voterSet, ...learnerSet]) {
    if (!Number.isInteger(node) || node < 0) {
      throw new RangeError(
        `node id ${node} is not a non-negative integer; use broker ids (broker.id) as node ids`,
      );
    }
  }
  return { voters: voterSet, learners: learnerSet };
}

export function describeConfig(config: ClusterConfig): string {
  return `voters [${config.voters.join(",")}] learners [${config.learners.join(",")}]`;
}

/** The membership after `change`, or why the change is not allowed. */
export function applyConfChange(config: ClusterConfig, change: ConfChange): ClusterConfig | string {
  const { node } = change;
  if (!Number.isInteger(node) || node < 0) return `node id ${node} is not a non-negative integer`;
  switch (change.type) {
    case "addLearner":
      if (isMember(config, node)) return `node ${node} is already a member (${describeConfig(config)})`;
      return makeConfig(config.voters, [...config.learners, node]);
    case "addVoter":
      if (isVoter(config, node)) return `node ${node} is already a voter (${describeConfig(config)})`;
      return makeConfig(
        [...config.voters, node],
        config.learners.filter((learner) => learner !== node),
      );
    case "promoteLearner":
      if (!isLearner(config, node)) {
        return `node ${node} is not a learner (${describeConfig(config)}); add it with addLearner first`;
      }
      return makeConfig(
        [...config.voters, node],
        config.learners.filter((learner) => learner !== node),
      );
    case "removeNode":
      if (!isMember(config, node)) return `node ${node} is not a member (${describeConfig(config)})`;
      if (isVoter(config, node) && config.voters.length === 1) {
        return `node ${node} is the only voter; add another voter before removing it`;
      }
      return makeConfig(
        config.voters.filter((voter) => voter !== node),
        config.learners.filter((learner) => learner !== node),
      );
  }
}
