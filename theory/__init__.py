"""theory: the symbolic two-layer ReLU model under logistic-type losses, its compiled field and its limits."""
