"""The fake's platform: a GPU one (sleep mode available), so the engine takes its GPU arguments."""


class _GPUPlatform:
    def is_cpu(self) -> bool:
        return False


current_platform = _GPUPlatform()
