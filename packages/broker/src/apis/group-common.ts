import type { RequestContext } from "../server/api-registry.js";

/** The client's host as Kafka reports it in DescribeGroups (`/` + address, InetAddress.toString style). */
export function clientHostOf(context: RequestContext): string {
  const address = context.clientAddress;
  const portSeparator = address.lastIndexOf(":");
  const host = portSeparator > 0 ? address.slice(0, portSeparator) : address;
  return `/${host.replace(/^::ffff:/, "")}`;
}
