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
   * Leaders `self` would still hold above its share after the planned transfers: more passes are
   * needed (the per-pass limit, or voters not caught up yet).
   */
  readonly excessAfter: number;
}

/**
 * Plans leadership transfers away from `self` toward an even spread of leaders over live nodes.
 * Pure: the host gathers the view and carries the plan out.
 *
 * A node's fair share is the sum over the groups it is a live voter of of 1 / (live voters of the
 * group), so groups placed on different subsets of nodes balance too. Every node runs this for the
 * groups it leads and only gives leadership away while it leads more than its share (rounded up),
 * to the live voter furthest below its own share, so two overloaded nodes with the same stale view
 * of an underloaded one together send it at most its deficit, not twice that.
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
  const transfers: Array<{ group: GroupId; target: NodeId }> = [];
  // Rounding up (with a little slack for float sums) leaves no node able to shed to another.
  const allowance = (node: NodeId) => Math.ceil((shares.get(node) ?? 0) - 1e-9);
  led.sort((a, b) => a.group - b.group);
  for (const view of led) {
    if (transfers.length >= input.maxTransfers) break;
    if (leaders.get(input.self)! <= allowance(input.self)) break;
    let target: NodeId = NO_NODE;
    let targetRoom = 0;
    for (const voter of view.liveVoters) {
      if (voter === input.self) continue;
      const room = allowance(voter) - leaders.get(voter)!;
      if (room <= 0 || !input.canTakeOver(view.group, voter)) continue;
      if (room > targetRoom || (room === targetRoom && voter < target)) {
        target = voter;
        targetRoom = room;
      }
    }
    if (target === NO_NODE) continue;
    transfers.push({ group: view.group, target });
    leaders.set(input.self, leaders.get(input.self)! - 1);
    leaders.set(target, leaders.get(target)! + 1);
  }
  const excessAfter = Math.max(0, (leaders.get(input.self) ?? 0) - allowance(input.self));
  return { transfers, leaders: before, shares, excessAfter };
}
