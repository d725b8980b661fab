#!/usr/bin/env flyscan-ioc
# Start-up script of the flyscan IOC:  flyscan-ioc host-driver/ioc/st.cmd
# Every setting is a macro with a default; set FLYSCAN_* in the environment (the systemd unit
# does, see firmware-odroid/DEPLOY.md) or edit the defaults here.
epicsEnvSet("P",        "$(FLYSCAN_PREFIX=BL1:FLY:)")
epicsEnvSet("PORT",     "$(FLYSCAN_PORT=/dev/ttyUSB0)")
epicsEnvSet("BAUD",     "$(FLYSCAN_BAUD=921600)")
epicsEnvSet("NPTS",     "$(FLYSCAN_NPTS=100000)")
epicsEnvSet("SETTINGS", "$(FLYSCAN_SETTINGS=/var/lib/flyscan)")
epicsEnvSet("CONTROL_HOSTS", "$(FLYSCAN_CONTROL_HOSTS=localhost)")
epicsEnvSet("DB",       "$(FLYSCAN_DB=$(ST_CMD_DIR)/../db)")
epicsEnvSet("EPICS_CA_MAX_ARRAY_BYTES", "$(EPICS_CA_MAX_ARRAY_BYTES=10000000)")

# Driver: prefix, serial port, baud, detector channels loaded below, settings folder.
flyscanConfig("$(P)", "$(PORT)", "$(BAUD)", 8, "$(SETTINGS)")

dbLoadRecords("$(DB)/flyscan.db", "P=$(P),NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=0,NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=1,NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=2,NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=3,NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=4,NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=5,NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=6,NPTS=$(NPTS)")
dbLoadRecords("$(DB)/flyscan_channel.db", "P=$(P),N=7,NPTS=$(NPTS)")

# Only configuration, Arm and Abort are writable, only from CONTROL_HOSTS (checked by address).
asSetFilename("$(DB)/flyscan.acf")
asSetSubstitutions("CONTROL_HOSTS='$(CONTROL_HOSTS)'")

iocInit
