# armbox.test=smp: machine-checkable lines about the CPUs, then the kernel log checked.
#   NPROC=<n>                    CPUs this shell may run on (online CPUs)
#   CPU-ONLINE=<list>            /sys/devices/system/cpu/online, e.g. 0-3
#   PARALLEL-OK=<n>              n busy loops ran at once and all finished
#   with n >= 3, CPU 2 is unplugged and plugged back (PSCI CPU_OFF, CPU_ON):
#   HOTPLUG-OFF=ok|fail  CPU-ONLINE-AFTER-OFF=<list>  HOTPLUG-ON=ok|fail  CPU-ONLINE-AFTER-ON=<list>
#   DMESG-CLEAN, or one DMESG-BAD: <line> per offending kernel log line
#   ARMBOX-TEST-DONE=smp
n=$(nproc)
echo "NPROC=$n"
cpus=/sys/devices/system/cpu
echo "CPU-ONLINE=$(cat $cpus/online)"

i=0
while [ $i -lt "$n" ]; do
  (j=0; while [ $j -lt 2000 ]; do j=$((j + 1)); done; echo $j > /tmp/par.$i) &
  i=$((i + 1))
done
wait
ok=0
for f in /tmp/par.*; do [ "$(cat "$f")" = 2000 ] && ok=$((ok + 1)); done
echo "PARALLEL-OK=$ok"

if [ "$n" -ge 3 ]; then
  if echo 0 > $cpus/cpu2/online; then echo "HOTPLUG-OFF=ok"; else echo "HOTPLUG-OFF=fail"; fi
  echo "CPU-ONLINE-AFTER-OFF=$(cat $cpus/online)"
  if echo 1 > $cpus/cpu2/online; then echo "HOTPLUG-ON=ok"; else echo "HOTPLUG-ON=fail"; fi
  echo "CPU-ONLINE-AFTER-ON=$(cat $cpus/online)"
fi

bad=$(dmesg | grep -E 'WARNING:|BUG:|Oops|rcu_sched self-detected stall|self-detected stall|detected stalls|soft lockup|hard LOCKUP|Kernel panic')
if [ -z "$bad" ]; then
  echo "DMESG-CLEAN"
else
  echo "$bad" | while IFS= read -r l; do echo "DMESG-BAD: $l"; done
fi
echo "ARMBOX-TEST-DONE=smp"
