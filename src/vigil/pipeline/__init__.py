"""The decision pipeline's pure steps, shared by the engine and the AuthZEN search: ``authorize``
(Cedar's answer under vigil's rule that an erroring forbid denies) and ``combine`` (the policy's
verdict and the behaviour assessment -> the outcome, and the effects it wants the engine to apply)."""
