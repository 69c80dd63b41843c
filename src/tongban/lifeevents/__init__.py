"""Life-event bundles (一件事): one submission, one case per matter at each competent
authority, followed as one bundle (issue 17)."""
