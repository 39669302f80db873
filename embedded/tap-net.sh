# The board's network on this machine, for the tests and benchmarks (sourced, not run):
# a network namespace with a TAP device `tap0` at 10.77.0.1/24 on this machine's side, and
# dnsmasq there serving DHCP (the one address 10.77.0.2, so the board is always there) and DNS
# (`tracker.board.test` is 10.77.0.1). Programs in the namespace resolve names through that
# dnsmasq (`ip netns exec` mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf).
#
#   tap_net_up NS DIR    create namespace NS; dnsmasq logs to DIR/dnsmasq.log (its lease file
#                        is DIR/leases); sets TAP_NET_DNSMASQ to dnsmasq's pid
#   tap_net_down NS      stop dnsmasq, remove the namespace and its resolv.conf; safe to call
#                        twice, or when tap_net_up did not finish. Call it before a bare
#                        `wait`, which would otherwise wait for dnsmasq forever.
# Needs root, `ip` and dnsmasq.

tap_net_up() {
    local ns=$1 dir=$2
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip tuntap add name tap0 mode tap
    ip netns exec "$ns" ip link set tap0 up
    ip netns exec "$ns" ip addr add 10.77.0.1/24 dev tap0
    mkdir -p "/etc/netns/$ns"
    echo "nameserver 10.77.0.1" >"/etc/netns/$ns/resolv.conf"
    ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root --pid-file= \
        --no-resolv --no-hosts --interface=tap0 --bind-interfaces --listen-address=10.77.0.1 \
        --address=/tracker.board.test/10.77.0.1 --dhcp-authoritative \
        --dhcp-range=10.77.0.2,10.77.0.2,255.255.255.0,1h --dhcp-option=option:router,10.77.0.1 \
        --dhcp-leasefile="$dir/leases" --log-dhcp --log-queries --log-facility="$dir/dnsmasq.log" &
    TAP_NET_DNSMASQ=$!
}

tap_net_down() {
    local ns=$1
    if [ -n "${TAP_NET_DNSMASQ:-}" ]; then
        kill "$TAP_NET_DNSMASQ" 2>/dev/null || true
        wait "$TAP_NET_DNSMASQ" 2>/dev/null || true
        TAP_NET_DNSMASQ=
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
    rmdir /etc/netns 2>/dev/null || true
}
