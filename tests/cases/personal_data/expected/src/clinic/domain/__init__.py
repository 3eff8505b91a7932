"""The hand-written domain logic of the clinic context.

esgen created this package once; it never changes or removes what is here.
"""
