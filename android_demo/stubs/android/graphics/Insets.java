package android.graphics;

public final class Insets {
    // Assigned in the constructor, not initialized here: an initialized final field is a constant
    // that javac would inline.
    public final int left;
    public final int top;
    public final int right;
    public final int bottom;

    private Insets() {
        throw new RuntimeException("Stub!");
    }
}
