# aaOS BR2_EXTERNAL tree: every package under package/ brings its own .mk.
include $(sort $(wildcard $(BR2_EXTERNAL_AAOS_PATH)/package/*/*.mk))
