#!/usr/bin/env bash
# Boot the QEMU board seeder: boot.sh FIRMWARE tap [TAP]   (default tap0; the TAP must exist)
#                             boot.sh FIRMWARE user [PORT]  (user-mode network; peers reach the
#                                 board at 127.0.0.1:PORT, default 6881, and the board reaches
#                                 this machine's 127.0.0.1 as 10.77.0.1; QEMU's DHCP server
#                                 gives the board 10.77.0.2)
# Runs in the foreground, logs on standard output; exits with the firmware (panics exit 1).
set -euo pipefail
FW=$1 MODE=${2:-user}
case "$MODE" in
    tap) NIC="tap,ifname=${3:-tap0},script=no,downscript=no,model=lan9118" ;;
    user) NIC="user,model=lan9118,net=10.77.0.0/24,host=10.77.0.1,dhcpstart=10.77.0.2,hostfwd=tcp:127.0.0.1:${3:-6881}-10.77.0.2:6881" ;;
    *) echo "usage: boot.sh FIRMWARE tap [TAP] | user [PORT]" >&2; exit 2 ;;
esac
exec qemu-system-arm -M mps2-an386 -display none -monitor none -serial none \
    -semihosting-config enable=on,target=native -nic "$NIC" -kernel "$FW"
