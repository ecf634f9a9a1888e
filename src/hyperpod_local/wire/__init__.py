"""AWS JSON 1.1 as botocore speaks it for SageMaker. Knows nothing of clusters."""
