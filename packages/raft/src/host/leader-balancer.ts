import type { GroupId, NodeId } from "../core/types.js";
import { NO_NODE } from "../core/types.js";

/** What one node knows about a group it hosts, for balancing. */
export interface BalancerGroup {
  readonly group: GroupId;
  /** The leader as this node knows it (NO_NODE while unknown). */
  readonly leader: NodeId;
  /** Voters of the group that are reachable now (this node included if it is one). */
  readonly liveVoters: readonly NodeId[];
}

export interface LeaderBalanceInput {
  readonly self: NodeId;
  readonly groups: Iterable<BalancerGroup>;
  /** Transfers to plan at most. */
  readonly maxTransfers: number;
  /** Whether `node` may take over `group` now (caught up, no transfer of it already under way). */
  readonly canTakeOver: (group: GroupId, node: NodeId) => boolean;
}

export interface LeaderBalancePlan {
  readonly transfers: ReadonlyArray<{ readonly group: GroupId; readonly target: NodeId }>;
  /** Leaders per live node among the groups this node hosts, before the planned transfers. */
  readonly leaders: ReadonlyMap<NodeId, number>;
  /** Each live node's fair share of those leaders (fractional). */
  readonly shares: ReadonlyMap<NodeId, number>;
  /**
   * Transfers `self` would still make after this plan if every voter were ready and there were no
   * per-pass limit: more passes are needed while this is above zero.
   */
  readonly excessAfter: number;
}

// Shares are sums of fractions: compare with a little slack for rounding.
const EPSILON = 1e-9;

/**
 * Plans leadership transfers away from `self` toward an even spread of leaders over live nodes.
 * Pure: the host gathers the view and carries the plan out.
 *
 * A node's fair share is the sum over the groups it is a live voter of of 1 / (live voters of the
 * group), so groups placed on different subsets of nodes balance too; its surplus is the leaders it
 * has minus that share. A node gives away leadership of a group it leads only while its surplus is
 * positive, and only to a live voter of that group whose surplus is at least 2 lower (so the move
 * never turns the imbalance around), the one with the lowest surplus first. With equal shares this
 * ends with every node within one leader of the others. Because a node only sheds its own surplus,
 * two overloaded nodes with the same stale view of an idle one send it about its deficit together,
 * not twice that.
 */
export function planLeaderTransfers(input: LeaderBalanceInput): LeaderBalancePlan {
  const leaders = new Map<NodeId, number>();
  const shares = new Map<NodeId, number>();
  const led: BalancerGroup[] = [];
  for (const view of input.groups) {
    if (view.liveVoters.length === 0) continue;
    const share = 1 / view.liveVoters.length;
    for (const voter of view.liveVoters) {
      shares.set(voter, (shares.get(voter) ?? 0) + share);
      if (!leaders.has(voter)) leaders.set(voter, 0);
    }
    if (view.leader === NO_NODE || !view.liveVoters.includes(view.leader)) continue;
    leaders.set(view.leader, (leaders.get(view.leader) ?? 0) + 1);
    if (view.leader === input.self) led.push(view);
  }
  const before = new Map(leaders);
  const surplus = (node: NodeId) => leaders.get(node)! - shares.get(node)!;
  // The groups this node leads, per voter that could take them over, lowest group id first.
  led.sort((a, b) => a.group - b.group);
  const byVoter = new Map<NodeId, BalancerGroup[]>();
  for (const view of led) {
    for (const voter of view.liveVoters) {
      if (voter === input.self) continue;
      const views = byVoter.get(voter);
      if (views === undefined) byVoter.set(voter, [view]);
      else views.push(view);
    }
  }
  const used = new Set<GroupId>();
  /** The next move: to the node with the lowest surplus that has a group it may take. */
  const pick = (cursors: Map<NodeId, number>, ready: boolean) => {
    let best: { group: GroupId; target: NodeId } | undefined;
    for (const [node, views] of byVoter) {
      if (surplus(input.self) - surplus(node) < 2 - EPSILON) continue;
      if (best !== undefined && surplus(node) > surplus(best.target) - EPSILON) continue;
      // Groups passed over stay passed over within one plan: used, or not ready for this node.
      let at = cursors.get(node) ?? 0;
      while (
        at < views.length &&
        (used.has(views[at]!.group) || (ready && !input.canTakeOver(views[at]!.group, node)))
      ) {
        at++;
      }
      cursors.set(node, at);
      if (at < views.length) best = { group: views[at]!.group, target: node };
    }
    if (best !== undefined) {
      used.add(best.group);
      leaders.set(input.self, leaders.get(input.self)! - 1);
      leaders.set(best.target, leaders.get(best.target)! + 1);
    }
    return best;
  };
  const transfers: Array<{ group: GroupId; target: NodeId }> = [];
  const readyCursors = new Map<NodeId, number>();
  while (transfers.length < input.maxTransfers && leaders.has(input.self) && surplus(input.self) > EPSILON) {
    const next = pick(readyCursors, true);
    if (next === undefined) break;
    transfers.push(next);
  }
  // What further passes would still move, were every voter ready and no limit in the way.
  let excessAfter = 0;
  const anyCursors = new Map<NodeId, number>();
  while (leaders.has(input.self) && surplus(input.self) > EPSILON && pick(anyCursors, false) !== undefined) {
    excessAfter++;
  }
  return { transfers, leaders: before, shares, excessAfter };
}
