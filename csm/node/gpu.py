"""GPU inventory through NVML."""

from csm.node.nvml import text


def pci_bus_id(info):
    """The bus id of an ``nvmlPciInfo_t`` (``00000000:3B:00.0``), or None."""
    if info is None:
        return None
    return text(getattr(info, "busId", None)) or text(getattr(info, "busIdLegacy", None))


def gpus(nvml):
    """``[{gpu_id, device_name, pci_bus_id, serial_number, uuid, vbios,
    inforom_image_version, hbm_memory (KiB)}]`` over an opened ``Nvml``."""
    records = []
    for index, handle in nvml.devices():
        memory = nvml.call("nvmlDeviceGetMemoryInfo", handle)
        records.append({
            "gpu_id": index,
            "device_name": text(nvml.call("nvmlDeviceGetName", handle)),
            "pci_bus_id": pci_bus_id(nvml.call("nvmlDeviceGetPciInfo", handle)),
            "serial_number": text(nvml.call("nvmlDeviceGetSerial", handle)),
            "uuid": text(nvml.call("nvmlDeviceGetUUID", handle)),
            "vbios": text(nvml.call("nvmlDeviceGetVbiosVersion", handle)),
            "inforom_image_version": text(nvml.call("nvmlDeviceGetInforomImageVersion", handle)),
            "hbm_memory": memory.total // 1024 if memory is not None else None,
        })
    return records
