"""The paper's theory: the MoLRG data model and its closed-form posterior (:mod:`.model`), representation
metrics and the subspace classifier (:mod:`.metrics`), and the MoLRG torch denoisers (:mod:`.denoisers`)."""
