"""The hand-written domain logic of the customers context.

esgen created this package once; it never changes or removes what is here.
"""
