"""The ``Sensor`` interface and drivers: tactile marker tracking, force/torque, cameras; tactile PCA."""
