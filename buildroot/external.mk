# Every package of this BR2_EXTERNAL tree: package/<name>/<name>.mk.
include $(sort $(wildcard $(BR2_EXTERNAL_KIOSKD_PATH)/package/*/*.mk))
