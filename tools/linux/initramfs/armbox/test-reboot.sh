# armbox.test=reboot: nothing in an initramfs survives a reset, so every boot reboots
# again; the harness counts ARMBOX-INIT-READY lines and stops the machine itself.
echo "ARMBOX-REBOOTING"
sync
reboot -f
while :; do sleep 60; done
